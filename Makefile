# Two entry points that work on a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv and run the pipeline on the bundled Online Retail data
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
OUT    ?= custseg-demo

.PHONY: demo test lint typecheck clean venv

$(BIN)/custseg: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/custseg

venv: $(BIN)/custseg

demo: venv
	$(BIN)/custseg demo --out $(OUT) --force

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
