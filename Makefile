# Two commands on a fresh machine:
#   make study   set up, then run the whole study on the embedded default (`kedro run`)
#   make test    set up, then run the tests
# TORCH_SPEC picks the torch build: the default is the CPU wheel; on a CUDA machine use e.g.
#   make study TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup study test lint bench viz mlflow-ui

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

study: setup
	$(BIN)/kedro run

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/bench_data_prep.py

viz: setup
	$(BIN)/kedro viz run --host 127.0.0.1

mlflow-ui: setup
	$(BIN)/kedro mlflow ui
