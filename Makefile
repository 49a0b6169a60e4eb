# tickcast: `make demo` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_SECONDS ?= 60

SOAK_MINUTES ?= 30
# Test processes of the parallel part of `make test`; each starts its own embedded broker. Three on two cores:
# the integration tests mostly wait on the broker, and with two the suite ran past its 15 minutes.
TEST_PROCESSES ?= 3
# Each process takes its next test when it is free, longest first (see tests/conftest.py): no process is left
# holding a queue of minute-long tests while the other one idles.
PARALLEL := -n $(TEST_PROCESSES) --dist load --maxschedchunk 1

.PHONY: install demo test lint typecheck schema-check unit integration bench bench-gateway soak clean peers-venv lock

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,plot]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tickcast demo --seconds $(DEMO_SECONDS)

lint: $(STAMP)
	$(BIN)/ruff check services tests $(wildcard bench)
	$(BIN)/ruff format --check services tests $(wildcard bench)
	$(BIN)/bandit --quiet --configfile pyproject.toml --recursive services $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not integration" -q

integration: $(STAMP)
	$(BIN)/pytest -q $(PARALLEL) -m "integration and not solo"
	$(BIN)/pytest -q -m "integration and solo"

# The schema gate first: an incompatible contract change fails fast, with its reasons.
# --durations: the suite must stay under 15 minutes, so every CI log names the tests that cost the most.
test: lint typecheck schema-check $(STAMP)
	$(BIN)/pytest -q $(PARALLEL) -m "not solo" --durations=15
	$(BIN)/pytest -q -m solo --durations=3

schema-check: $(STAMP)
	$(BIN)/tickcast schema check --local-only

# The peers scenario's processes (Quix Streams, Bytewax, a naive Faust agent) run in a venv of their own, with
# tickcast installed there too (view 1 calls its handler): Quix Streams pins confluent-kafka and pydantic below
# the versions tickcast installs, and the venv that runs `make test` must not depend on whether someone benched.
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

peers-venv: $(PEERS_STAMP)

$(PEERS_STAMP): pyproject.toml
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -e '.[bench-peers]'
	touch $(PEERS_STAMP)

# The image (deploy/Dockerfile) installs pinned versions with their sha256 hashes, never pyproject.toml's ranges:
# deploy/requirements.lock for the runtime dependencies, deploy/build-requirements.lock for the build backend.
# `make lock` re-pins them after a change to pyproject.toml (tests/unit/deploy/test_lock.py fails until then); it
# keeps every pin that still fits, `make lock LOCK_ARGS=--upgrade` moves them all to the newest releases.
# uv resolves for the image's platform (CPython 3.11, linux x86_64) from any machine, in a venv of its own.
UV_VERSION := 0.13.9
LOCK_VENV := .venv-lock
LOCK_STAMP := $(LOCK_VENV)/.installed
LOCK_ARGS ?=
UV_COMPILE := $(LOCK_VENV)/bin/uv pip compile --quiet --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--generate-hashes --custom-compile-command "make lock" $(LOCK_ARGS)

$(LOCK_STAMP):
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'
	touch $(LOCK_STAMP)

lock: $(LOCK_STAMP)
	$(UV_COMPILE) pyproject.toml --output-file deploy/requirements.lock
	$(LOCK_VENV)/bin/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(UV_COMPILE) - --output-file deploy/build-requirements.lock

# e.g. `make bench BENCH_ARGS="--only peers --ticks 100000"`: the same venvs, some scenarios.
BENCH_ARGS ?=

bench: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# One gateway in front of a pipeline at 500 ticks/s: GET latency (wrk), SSE fan-out delay, memory per client.
bench-gateway: $(STAMP)
	$(BIN)/python -m bench.gateway

# Not in CI (a 2-minute version is, in tests/integration/test_soak.py): kill -9 and SIGSTOP under load.
soak: $(STAMP)
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) $(PEERS_VENV) $(LOCK_VENV) .tickcast .pytest_cache .mypy_cache .ruff_cache
