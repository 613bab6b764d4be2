# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: install demo test test-sqlite test-postgres lint bench bench-scale clean

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

# The whole suite on SQLite, then again on PostgreSQL when its server is installed
# (apt-get install postgresql; .ci/run does).
test: install lint test-sqlite
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then $(MAKE) --no-print-directory test-postgres; \
	else echo "PostgreSQL pass skipped: apt-get install postgresql to run it"; fi

test-sqlite: install
	$(BIN)/pytest

# The suite against a private PostgreSQL server on loopback (tests marked sqlite_only are skipped).
test-postgres: install
	@dir=$$(mktemp -d /tmp/orchestrate-pg-XXXXXX) && \
	port=$$($(PY) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') && \
	url=$$(.ci/postgres start $$dir $$port) || exit 1; \
	echo "PostgreSQL pass: $$url"; \
	ORCHESTRATE_TEST_POSTGRES=$$url $(BIN)/pytest; code=$$?; \
	.ci/postgres stop $$dir; rm -rf $$dir; exit $$code

bench: install
	$(PY) bench/run.py
	$(PY) bench/read_commands.py
	$(PY) bench/metrics.py
	$(PY) bench/spec_load.py

# Scaling out (issue 13): a 1,000-stage run on Dask vs local, and queued runs with 1-3 workers
# on PostgreSQL (each starts its own cluster or server on loopback).
bench-scale: install
	$(PY) bench/dask_executor.py
	$(PY) bench/workers.py

clean:
	rm -rf $(VENV) orchestrate.db orchestrate.db-* .pytest_cache .mypy_cache .ruff_cache
