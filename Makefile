# The two commands: `make up` (set up and start the gateway on CPU) and `make test`.

.PHONY: up test setup setup-test doctor models lock lint format bench

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

# Every GPU backend's weights (docs/deploy.md): by default into the compose volumes, through the
# gpu profile's one-shot `models` service; MODELS_DIR=<folder> fetches into a folder of this
# machine instead (one subfolder per backend). MODELS_ARGS: e.g. --only asr-parakeet; the
# Whisper sizes come from AISTACK_WHISPER_SIZES (large-v3)
# (scripts/models.py --help). HF_ENDPOINT names a mirror.
MODELS_DIR ?=
models:
ifeq ($(MODELS_DIR),)
	docker compose --profile gpu run --rm models $(MODELS_ARGS)
else
	$${PYTHON:-.venv/bin/python} scripts/models.py --root $(MODELS_DIR) $(MODELS_ARGS)
endif

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
