# crmsync — the two commands a fresh clone needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test unit bench check-connection bootstrap clean

## demo: bootstrap, start a throwaway PostgreSQL and the SUMIT sandbox, run crm_bidirectional_sync
demo: $(STAMP)
	$(PY) scripts/demo.py

## test: bootstrap, then the whole suite (unit + integration through Airflow)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## unit: only the fast tests that need neither PostgreSQL nor Airflow
unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

## bench: the performance table (10,000 and 100,000 customers; BENCH_ARGS=--million adds 1,000,000)
bench: $(STAMP)
	$(PY) scripts/bench.py $(BENCH_ARGS)

## check-connection: one read-only call with the sumit_default connection; says what is wrong
check-connection: $(STAMP)
	$(PY) scripts/check_connection.py

bootstrap: $(STAMP)

$(STAMP): requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV) .airflow .run .pytest_cache
