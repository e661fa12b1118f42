# hbvip — every target installs what it needs first (scripts/deps.sh is idempotent).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: deps test unit integration lint demo demo-down bench soak lab-down clean

deps:
	@bash scripts/deps.sh

## The whole suite (what CI runs): unit tests, lab integration tests, lint (tests/lint runs scripts/lint.sh
## as one test, so it fills a worker freed near the end). TEST_WORKERS pytest processes (pytest-xdist)
## share the machine: the tests of a module (and so its provisioned lab) stay in one worker
## (tests/integration/conftest.py), the modules that take minutes handed out first (xdist would otherwise
## hand out the modules with the most tests first, which are the quick ones); the slowest 25 are printed.
TEST_WORKERS ?= 4
test: deps
	$(PYTEST) tests/unit tests/integration tests/lint -m "not slow and not soak" -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

unit: deps
	$(PYTEST) tests/unit

integration: deps
	$(PYTEST) tests/integration -m "not slow and not soak" -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

## Long runs (not in CI): the whole fault suite, soak scenarios, >= 10^6 fuzz inputs of the wire codec.
## atheris is installed here only (it is not in requirements-dev.txt: CI must not depend on its wheel).
SOAK_FUZZ_RUNS ?= 1000000
SOAK_DIR ?= /tmp/hbvip-soak
soak: deps
	$(PY) -m pip install -q 'atheris>=2.3' || { echo "make soak: atheris could not be installed (needs a wheel for this Python or clang to build)"; exit 1; }
	$(PYTEST) tests/integration -m "soak or not slow" -p no:cacheprovider
	mkdir -p $(SOAK_DIR)/fuzz-corpus
	cd $(SOAK_DIR) && PYTHONPATH=$(CURDIR)/agent/src:$(CURDIR) $(CURDIR)/$(PY) $(CURDIR)/tests/fuzz/fuzz_codec.py \
		-atheris_runs=$(SOAK_FUZZ_RUNS) -max_len=4096 fuzz-corpus

lint: deps
	@bash scripts/lint.sh

## hbvip vs Heartbeat 3.0.6 vs keepalived on one lab (not part of `make test`; about an hour).
## BENCH_TRIALS (10), BENCH_FOOTPRINT_S (60), BENCH_SCALE_TRIALS (2); writes bench/results/<date>/.
bench: deps
	$(PY) -m bench

## A two-host lab, site.yml over ssh, a live failover timeline; the lab stays up for a look.
## DEMO_ARGS=--no-tty prints plain lines (CI). `make demo-down` removes the demo lab.
demo: deps
	$(PY) -m demo $(DEMO_ARGS)

demo-down: deps
	$(PY) -m demo down

lab-down: deps
	$(PY) -m lab down --all

clean:
	rm -rf $(VENV) build dist agent/build agent/src/*.egg-info .pytest_cache
