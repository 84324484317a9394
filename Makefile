# Two entry points for a fresh clone (only python3 and make needed): `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,postgres]'
	touch $@ $(VENV)/.stamp-run

## Build the demo digest from the bundled sample (offline) and print it; the HTML path is shown at the end.
demo: $(VENV)/.stamp-run
	$(BIN)/digest --config examples/demo.toml preview

## Install everything the tests need and run the whole suite.
test: $(VENV)/.stamp-test
	-@bash .ci/system-deps
	$(BIN)/python -m pytest -q

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check digest tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) examples/demo.db* examples/outbox .pytest_cache .mypy_cache .ruff_cache
