# Everything runs inside .venv, created and filled from pyproject on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/letsbot console --demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check app letsbot adapters storage tests bench
	$(BIN)/ruff format --check app letsbot adapters storage tests bench
	$(BIN)/mypy app letsbot adapters storage

format: $(STAMP)
	$(BIN)/ruff check --fix app letsbot adapters storage tests bench
	$(BIN)/ruff format app letsbot adapters storage tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var/demo.db* .pytest_cache .mypy_cache .ruff_cache
