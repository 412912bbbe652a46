# Greenshift: `make demo` runs it for real, `make test` runs the whole suite.
# Both create .venv when it is missing and install the project into it.

PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit up bench contracts clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m greenshift.demo

up: $(STAMP)
	$(VENV)/bin/greenshift up

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy greenshift workflows activities worker tests/harness
	$(PY) -m pytest -q --durations=25

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy greenshift workflows activities worker tests/harness

bench: $(STAMP)
	$(PY) bench/run_all

contracts: $(STAMP)
	$(PY) tools/gen_contracts.py sagemaker > greenshift/contracts/sagemaker_shapes.py
	$(PY) tools/gen_contracts.py cloudwatch > greenshift/contracts/cloudwatch_shapes.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
