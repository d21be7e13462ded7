# Two commands on a fresh machine:
#   make study   set up, then run the whole study on the embedded default (`kedro run`)
#   make test    set up, then lint and run every test (make test-fast: the tests not marked slow)
# TORCH_SPEC picks the torch build: the default is the CPU wheel; on a CUDA machine use e.g.
#   make study TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# Without its declared requirements (see pyproject.toml's lmms extra).
LMMS_EVAL_VERSION := 0.7.3
BIN := $(VENV)/bin
# apt-get needs root: use sudo unless we are root already.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser wordnet study test test-fast lint bench viz mlflow-ui sweep

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[dev,lmms,deepspeed]"
	$(BIN)/pip install --quiet --no-deps lmms-eval==$(LMMS_EVAL_VERSION)
	touch $@

# Debian's headless Chromium, for the kedro-viz browser test (tests/test_viz.py).
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Debian's WordNet 3.0, for METEOR's synonym matching in reconstruction_eval (nltk's download
# route needs the internet at run time).
wordnet:
	@test -f /usr/share/wordnet/data.noun || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base wordnet-sense-index; }

study: setup wordnet
	$(BIN)/kedro run

CODE := src tests benchmarks research

lint: setup
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

test: lint browser wordnet
	$(BIN)/pytest

test-fast: lint wordnet
	$(BIN)/pytest -m "not slow"

bench: setup
	$(BIN)/python benchmarks/bench_data_prep.py

viz: setup
	$(BIN)/kedro viz run --host 127.0.0.1

# kedro-mlflow starts `mlflow ui` from PATH, so the environment's bin goes first.
mlflow-ui: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/kedro mlflow ui

# The study per thinking setting (k = 1, 2, 4 fixed; ratio 0.05), then `compare`; e.g.
#   make sweep SWEEP_ARGS="--fixed 1 2 --ratio --params cot_baseline.stage_0.train.max_steps=100"
sweep: setup
	$(BIN)/heima-kedro sweep $(SWEEP_ARGS)
