# crmsync — the two commands a fresh clone needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test unit bench check-connection airflow bootstrap system-deps postgres-deps clean

## demo: bootstrap (and PostgreSQL's server if missing), start a throwaway PostgreSQL and the SUMIT sandbox, run crm_bidirectional_sync
demo: $(STAMP) postgres-deps
	$(PY) scripts/demo.py

## test: bootstrap (with the Debian packages of scripts/system-deps.sh), then the whole suite
## (unit, integration through Airflow, end-to-end against a live Airflow and in Chromium), on three
## pytest-xdist workers (TEST_WORKERS; TEST_WORKERS=0 runs it serially, in one process)
TEST_WORKERS ?= 3
test: $(STAMP) system-deps
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup) $(PYTEST_ARGS)

## unit: only the fast tests that need neither PostgreSQL nor Airflow
unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

## bench: the performance table (10,000 and 100,000 customers; BENCH_ARGS=--million adds 1,000,000)
bench: $(STAMP) postgres-deps
	$(PY) scripts/bench.py $(BENCH_ARGS)

## check-connection: one read-only call with the sumit_default connection; says what is wrong
check-connection: $(STAMP)
	$(PY) scripts/check_connection.py

## airflow: a local Airflow 3 (UI at http://127.0.0.1:8080, admin / admin) with crmsync, PostgreSQL and the sandbox
airflow: $(STAMP) postgres-deps
	$(PY) scripts/airflow_local.py $(AIRFLOW_ARGS)

bootstrap: $(STAMP)

## system-deps: Debian packages the suite needs: PostgreSQL's server when no initdb is found, and what the
## end-to-end tests need (installs only what is missing; not root: prints the apt-get command)
system-deps:
	bash scripts/system-deps.sh

## postgres-deps: only PostgreSQL's server, when no initdb is found (demo, airflow, bench)
postgres-deps:
	bash scripts/system-deps.sh postgres

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	# setuptools leaves a copy of the metadata beside the package; Airflow puts plugins/ on
	# sys.path, where it would be a second crmsync distribution (its airflow.plugins entry point
	# loaded twice: "Plugin 'crmsync_console' already registered"). The installed dist-info is the one.
	rm -rf plugins/crmsync.egg-info
	touch $(STAMP)

clean:
	rm -rf $(VENV) .airflow .run .pytest_cache
