"""Integration fixtures: a real PostgreSQL, the SUMIT sandbox over HTTP, and Airflow itself.

The Airflow environment is set before anything imports Airflow: a throwaway AIRFLOW_HOME
with a SQLite metadata database, the project's dags/ and plugins/. Each test starts from an
empty customers database (no tables: the DAGs must create them) and an empty sandbox.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

import pytest

from crmsync.testing.airflow_env import PROJECT_ROOT, airflow_env, migrate, sumit_connection

API_KEY = "itest-" + secrets.token_hex(16)  # scanned for in every output and table
COMPANY_ID = 1000
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="crmsync-test-airflow-"))
FAST_RETRIES = {"backoff_initial": 0.05, "backoff_max": 0.3, "max_attempts": 4, "read_timeout": 3,
                "connect_timeout": 2, "page_size": 50}

# Before any Airflow import: the environment decides Airflow's configuration.
os.environ.update(airflow_env(
    AIRFLOW_HOME, sumit_conn="{}", postgres_conn={}, CRMSYNC_TASK_RETRIES="0", CRMSYNC_TASK_RETRY_DELAY_SECONDS="1",
))

CRM_TABLES = "sumit_customers, crm_sync_runs, crm_sync_errors, crm_sync_conflicts"


@pytest.fixture(scope="session")
def pg():
    from crmsync.testing.postgres import LocalPostgres

    with LocalPostgres() as server:
        yield server


@pytest.fixture(scope="session")
def sandbox():
    from crmsync.sandbox.control import run_sandbox_process

    with run_sandbox_process(company_id=COMPANY_ID, api_key=API_KEY, verbose=True) as server:
        yield server


@pytest.fixture(scope="session")
def dagbag():
    migrate(dict(os.environ))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


def set_sumit_connection(url: str, *, api_key: str = API_KEY, company_id: int | str = COMPANY_ID, **extra) -> None:
    os.environ["AIRFLOW_CONN_SUMIT_DEFAULT"] = sumit_connection(url, company_id, api_key, **{**FAST_RETRIES, **extra})


@pytest.fixture
def env(pg, sandbox, dagbag):
    """Empty database, empty sandbox, connections pointed at both."""
    with pg.connect(autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {CRM_TABLES} CASCADE")
    sandbox.control.reset()
    os.environ["AIRFLOW_CONN_CRM_POSTGRES"] = json.dumps(pg.airflow_conn())
    set_sumit_connection(sandbox.url)
    yield
    sandbox.control.clear_faults()


@pytest.fixture
def run_dag(dagbag):
    """Run a DAG through Airflow (dag.test) and return the DagRun's final state."""

    def run(dag_id: str, conf: dict | None = None) -> str:
        dag = dagbag.get_dag(dag_id)
        dag_run = dag.test(run_conf=conf or {})
        return str(dag_run.state)

    return run
