# Accord: two commands on a fresh machine.
#   make demo   full pipeline on generated data -> ./accord-demo/report.html
#   make test   the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/accord demo --out accord-demo

# The whole suite, slow tests included (CI runs this).
test: $(STAMP)
	$(PY) -m pytest -n 2 -q

# Everything but the slow marker, for the edit-test loop.
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/ingest.py

clean:
	rm -rf $(VENV) accord-demo .pytest_cache .mypy_cache .ruff_cache
