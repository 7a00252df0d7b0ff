"""End-to-end fixtures: one live Airflow 3 for these tests, as `make airflow` runs it.

`scripts/airflow_local.py`'s LiveAirflow starts PostgreSQL and the SUMIT sandbox (a
``crmsync.testing.stack.LocalStack``) and Airflow's api-server, scheduler and dag-processor
as real processes; the tests talk to it over HTTP (REST API v2 and the UI in Chromium), as a
user would. Everything it started is stopped when the last of these tests is done (package
scope: not left running through the rest of the suite), also after a failure. Its AIRFLOW_HOME (component logs and task
logs) stays in artifacts/e2e-airflow/ for a look after a failed run.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from airflow_local import LiveAirflow  # noqa: E402
from .live_helpers import AirflowApi  # noqa: E402

ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="package")
def live_airflow():
    with LiveAirflow(ARTIFACTS / "e2e-airflow", port=0, password=secrets.token_urlsafe(12), seed_demo=0,
                     local_customers=False, log=print,
                     env={"CRMSYNC_TASK_RETRIES": "0", "CRMSYNC_TASK_RETRY_DELAY_SECONDS": "1"}) as live:
        yield live


@pytest.fixture(scope="package")
def api(live_airflow) -> AirflowApi:
    return AirflowApi(live_airflow)


@pytest.fixture(scope="package")
def customers_table(live_airflow):
    """crmsync's tables in the live customers database (the DAG would create them too)."""
    live_airflow.stack.load_schema()
    return live_airflow.pg


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Let fixtures see whether their test failed (``request.node.failed``), e.g. to keep a screenshot."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.failed = True
