# The two commands: `make up` (set up and start the gateway on CPU) and `make test`.

.PHONY: up test setup lint format bench

setup:
	scripts/setup.sh

up: setup
	.venv/bin/python scripts/up.py

test: setup
	scripts/test.sh

# The benchmark suite (about 20 minutes; BENCH_ARGS=--quick for a smoke check): a table,
# and the figures in bench/results/<date>.json. See docs/benchmarks.md.
bench: setup
	.venv/bin/python bench/suite.py $(BENCH_ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .
