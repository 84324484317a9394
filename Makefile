# Two entry points for a fresh clone (only python3 and make needed): `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-fast check lint system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,postgres,semantic]'
	touch $@ $(VENV)/.stamp-run

## Build the demo digest from the bundled sample (offline) and print it; the HTML path is shown at the end.
demo: $(VENV)/.stamp-run
	$(BIN)/digest --config examples/demo.toml preview

## Install what the tests need (Python side) and run the whole suite. Tests that need a Debian package
## that is missing (PostgreSQL, Chromium) are skipped with the reason; `make system-deps` installs them.
test: $(VENV)/.stamp-test
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4

## The inner loop: slow tests (crash loops, scale, browser) deselected, fewer fuzz examples.
test-fast: $(VENV)/.stamp-test
	DIGEST_FUZZ_EXAMPLES=200 $(BIN)/python -m pytest -q -n auto --maxprocesses 4 -m "not slow"

## Lint, format and types over the code and its tests (CI runs this before the tests).
check: $(VENV)/.stamp-test
	$(BIN)/ruff check digest tests benchmarks
	$(BIN)/ruff format --check digest tests benchmarks
	$(BIN)/mypy digest tests

lint: check

## Debian packages some tests use (postfix's smtp-sink, PostgreSQL, Chromium); needs root and apt-get.
system-deps:
	bash .ci/system-deps

clean:
	rm -rf $(VENV) examples/demo.db* examples/outbox .pytest_cache .mypy_cache .ruff_cache
