# The two commands: `make up` (set up and start the gateway on CPU) and `make test`.

.PHONY: up test setup setup-test doctor lock lint format bench

# What the gateway needs, not the test tools.
setup:
	scripts/system-packages.sh runtime
	scripts/setup.sh runtime

# That, and the test tools (make test runs this itself, after the system packages).
setup-test:
	scripts/system-packages.sh runtime
	scripts/setup.sh test

# Check this machine before make up (PROFILE=gpu: before the compose gpu profile).
PROFILE ?= cpu
doctor:
	@$${PYTHON:-python3} scripts/doctor.py --profile $(PROFILE) $(UP_ARGS)

# UP_ARGS: e.g. --port 11600 --asr-whisper-port 11610 (scripts/up.py --help)
up: setup
	.venv/bin/python scripts/up.py $(UP_ARGS)

# Sets up what the suite needs first: system packages, the test tools, a container engine.
test:
	scripts/test.sh

# Pin every third-party package at the version in .venv (constraints.txt), after the tests
# passed on it: a fresh machine then installs what was tested.
lock:
	scripts/lock.sh

# The benchmark suite (about 16 minutes on 2 cores; BENCH_ARGS=--quick for a smoke check): a table,
# and the figures in bench/results/<date>.json. See docs/benchmarks.md.
bench: setup-test
	.venv/bin/python bench/suite.py $(BENCH_ARGS)

lint: setup-test
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup-test
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .
