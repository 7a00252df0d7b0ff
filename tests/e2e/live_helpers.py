"""What the end-to-end tests share: a REST API v2 client and test data helpers."""

from __future__ import annotations

import secrets
import time

import requests

RUN_TIMEOUT_SECONDS = 150
PUSH_DAG = "crm_push_customers"
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
            run = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"{dag_id} run {run_id} still {run['state']} after {timeout} s; tasks: "
                                     f"{self.task_states(dag_id, run_id)}\n{self.live.logs_tail()}")
            time.sleep(1)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

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
