"""What the end-to-end tests share: a REST API v2 client and test data helpers."""

from __future__ import annotations

import secrets
import shutil
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

RUN_TIMEOUT_SECONDS = 150
PUSH_DAG = "crm_push_customers"
PULL_DAG = "crm_pull_customers"
SYNC_DAG = "crm_bidirectional_sync"


class AirflowApi:
    """The REST API v2 with a bearer token from ``POST /auth/token``."""

    def __init__(self, live):
        self.live = live
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {live.token()}"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.live.url + path, timeout=30, **kwargs)

    def ok(self, method: str, path: str, **kwargs) -> dict:
        response = self.call(method, path, **kwargs)
        assert response.status_code < 300, f"{method} {path}: HTTP {response.status_code} {response.text}"
        return response.json()

    def unpause(self, dag_id: str) -> dict:
        dag = self.ok("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        assert dag["is_paused"] is False
        return dag

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT_SECONDS) -> dict:
        """Poll the run until it is finished; fail with its task states and logs if it is not in time."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                run = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            except requests.exceptions.RequestException:
                # a loaded machine's api-server may not answer one poll in 30 s: ask again, until the deadline
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
                continue
            if run["state"] in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"{dag_id} run {run_id} still {run['state']} after {timeout} s; tasks: "
                                     f"{self.task_states(dag_id, run_id)}\n{self.live.logs_tail()}")
            time.sleep(0.3)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

    def trigger(self, dag_id: str, conf: dict | None = None) -> dict:
        """A manual run through ``POST /dagRuns`` (the DAG must be unpaused to run)."""
        return self.ok("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        """The run's task instances by task id (state, hostname, try_number, start_date, ...)."""
        tis = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti for ti in tis}

    def hostnames(self, dag_id: str, run_id: str) -> dict[str, str]:
        """Where each task of the run ran (its last try): the task instance's ``hostname``; a task
        that never ran (skipped by its trigger rule, e.g. apply_approved_plan) is left out."""
        return {task_id: ti["hostname"] for task_id, ti in self.task_instances(dag_id, run_id).items()
                if ti.get("hostname")}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """Every try of one task (try_number, state, hostname, ...), oldest first."""
        body = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
        return sorted(body["task_instances"], key=lambda t: t["try_number"])

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, states: set[str],
                      timeout: float = RUN_TIMEOUT_SECONDS, until=None) -> dict:
        """Poll until the task instance is in one of ``states`` (and ``until(ti)`` holds, if given)."""
        deadline = time.monotonic() + timeout
        while True:
            ti = self.task_instances(dag_id, run_id).get(task_id) or {}
            if ti.get("state") in states and (until is None or until(ti)):
                return ti
            if time.monotonic() > deadline:
                raise AssertionError(f"{dag_id} {run_id}: {task_id} is {ti.get('state')}, not {sorted(states)}, "
                                     f"after {timeout} s; tasks: {self.task_states(dag_id, run_id)}\n"
                                     f"{self.live.logs_tail()}")
            time.sleep(0.3)

    def task_log_events(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[dict]:
        """The task's structured log: one dict per event (``event``, ``timestamp``, ``level``, ...)."""
        body = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}")
        return [item for item in body.get("content") or [] if isinstance(item, dict)]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log as text (its events, one per line), as the UI shows it."""
        body = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}")
        content = body.get("content") or []
        lines = [item.get("event", "") if isinstance(item, dict) else str(item) for item in content]
        return self.live.redact("\n".join(lines))


def add_customers(pg, *names: str) -> list[int]:
    with pg.connect() as conn:
        return [conn.execute("INSERT INTO sumit_customers (name, email, city) VALUES (%s, %s, %s) RETURNING id",
                             (name, f"e2e-{secrets.token_hex(4)}@example.co.il", "חיפה")).fetchone()[0]
                for name in names]


def lock_holds(events: list[dict]) -> list[tuple[datetime, datetime]]:
    """When a task held crmsync's writer lock: (taken, released) from its log's
    "Took the crmsync lock ..." and "Released the crmsync lock." lines."""
    holds, taken = [], None
    for item in events:
        event = str(item.get("event", ""))
        if event.startswith("Took the crmsync lock"):
            taken = datetime.fromisoformat(item["timestamp"])
        elif event.startswith("Released the crmsync lock") and taken is not None:
            holds.append((taken, datetime.fromisoformat(item["timestamp"])))
            taken = None
    return holds


def advisory_lock_holders(pg) -> list[tuple[int, str]]:
    """(pid, application_name) of every session holding an advisory lock in the customers
    database; crmsync's writer lock is one (see plugins/crmsync/db/locking.py)."""
    with pg.connect(autocommit=True) as conn:
        return conn.execute(
            "SELECT l.pid, coalesce(a.application_name, '') FROM pg_locks AS l"
            " LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            "   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " ORDER BY l.pid").fetchall()


def login_token(live, username: str, password: str) -> str:
    """A JWT for another login of the live Airflow (``POST /auth/token``)."""
    response = requests.post(f"{live.url}/auth/token", json={"username": username, "password": password}, timeout=30)
    assert response.status_code == 201, f"POST /auth/token as {username}: HTTP {response.status_code} {response.text}"
    return response.json()["access_token"]


def run_ids(api: AirflowApi, *dag_ids: str) -> dict[str, set[str]]:
    """Every run id of these DAGs, by DAG (to show that a refused call made none)."""
    return {dag_id: {r["dag_run_id"] for r in api.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns",
                                                        params={"limit": 1000})["dag_runs"]}
            for dag_id in dag_ids}


# Debian's Chromium (scripts/system-deps.sh installs it), driven by Playwright; these flags keep it
# off the network this machine does not have.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: run scripts/system-deps.sh as root "
                    "(apt-get install chromium chromium-driver fonts-liberation)")
