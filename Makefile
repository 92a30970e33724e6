# `make train` and `make test` set up .venv on first use (or when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.genlab-installed
ARGS ?=

.PHONY: train test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)  ## the default job: VAE on scikit-learn's digits, offline, under a minute
	$(BIN)/genlab-train $(ARGS)

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)  ## genlab vs a plain PyTorch loop, VAE on Fashion-MNIST (minutes)
	$(BIN)/python scripts/bench_vae.py

clean:
	rm -rf outputs .pytest_cache
