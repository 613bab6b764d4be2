# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: install
	$(BIN)/orchestrate pipeline validate pipelines.d/*.yaml
	$(BIN)/orchestrate pipeline run demo

lint: install
	$(BIN)/ruff check orchestrate tests bench
	$(BIN)/ruff format --check orchestrate tests bench
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest

bench: install
	$(PY) bench/run.py
	$(PY) bench/read_commands.py
	$(PY) bench/metrics.py

clean:
	rm -rf $(VENV) orchestrate.db orchestrate.db-* .pytest_cache .mypy_cache .ruff_cache
