"""End-to-end fixtures: one live Airflow 3 for these tests, as `make airflow` runs it.

`scripts/airflow_local.py`'s LiveAirflow starts PostgreSQL and the SUMIT sandbox (a
``crmsync.testing.stack.LocalStack``) and Airflow's api-server, scheduler and dag-processor
as real processes; the tests talk to it over HTTP (REST API v2 and the UI in Chromium), as a
user would. Everything it started is stopped when the last of these tests is done (package
scope: not left running through the rest of the suite), also after a failure. Its AIRFLOW_HOME (component logs and task
logs) stays in artifacts/e2e-airflow/ for a look after a failed run.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from airflow_local import LiveAirflow  # noqa: E402
from .live_helpers import AirflowApi  # noqa: E402

ARTIFACTS = ROOT / "artifacts"
NOTIFICATIONS = ARTIFACTS / "e2e-notifications.jsonl"
VIEWER = "viewer"  # a second login with SimpleAuthManager's viewer role (reads, may not trigger)


@pytest.fixture(scope="package")
def live_airflow():
    # A key that every escaping changes, random in its first 8 characters: the secret scan
    # looks for each spelling and for that prefix.
    api_key = secrets.token_urlsafe(6) + "+/=\"\\'é-" + secrets.token_hex(12)
    NOTIFICATIONS.parent.mkdir(parents=True, exist_ok=True)
    NOTIFICATIONS.unlink(missing_ok=True)
    with LiveAirflow(ARTIFACTS / "e2e-airflow", port=0, password=secrets.token_urlsafe(12), seed_demo=0,
                     local_customers=False, log=print, api_key=api_key,
                     users={VIEWER: ("viewer", secrets.token_urlsafe(12))},
                     env={"CRMSYNC_TASK_RETRIES": "0", "CRMSYNC_TASK_RETRY_DELAY_SECONDS": "1",
                          "CRMSYNC_NOTIFY_FILE": str(NOTIFICATIONS),  # read by test_mass_change
                          "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",  # the secret scan reads DEBUG logs
                          # sumit_default lives in the metadata database instead (an empty variable
                          # is skipped), so a test can switch its API profile through the REST API
                          "AIRFLOW_CONN_SUMIT_DEFAULT": "",
                          # ... encrypted there, as in production: the secret scan reads that table too
                          "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()}) as live:
        api = AirflowApi(live)
        api.ok("POST", "/api/v2/connections", json=sumit_connection_body(live, "guide"))
        yield live


def sumit_connection_body(live, profile: str) -> dict:
    """The sumit_default connection for the live stack's sandbox, as the REST API takes it."""
    return {"connection_id": "sumit_default", "conn_type": "sumit", "host": live.sandbox.url,
            "login": str(live.company_id), "password": live._api_key,
            "extra": json.dumps({"api_profile": profile, "customers_folder": "customers"})}


@pytest.fixture(scope="package")
def viewer_login(live_airflow) -> tuple[str, str]:
    """(username, password) of the live Airflow's viewer: may read everything, start nothing."""
    role, password = live_airflow.users[VIEWER]
    assert role == "viewer"
    return VIEWER, password


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
