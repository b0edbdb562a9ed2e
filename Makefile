# Everything runs inside .venv, created and filled from pyproject on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test test-fast lint bench format clean

# What the bot needs to run; the demo needs no more.
# Its output goes to a log, shown only when something fails.
$(RUNTIME): pyproject.toml
	@echo "Installing letsbot into $(VENV) (the first time takes a minute or two)..."
	@$(PYTHON) -m venv $(VENV)
	@($(PIP) --upgrade pip && $(PIP) -e .) > $(VENV)/install.log 2>&1 \
		|| (cat $(VENV)/install.log; echo "make: installing failed; see above"; exit 1)
	@touch $(RUNTIME)

# The tests and the linters besides (a homeserver, ruff, mypy).
$(STAMP): $(RUNTIME)
	$(PIP) -e '.[test,dev]'
	touch $(STAMP)

demo: $(RUNTIME)
	@$(BIN)/letsbot console --demo

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
