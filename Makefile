# The two commands: `make up` (set up and start the gateway on CPU) and `make test`.

.PHONY: up test setup lint format

setup:
	scripts/setup.sh

up: setup
	.venv/bin/python scripts/up.py

test: setup
	scripts/test.sh

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .
