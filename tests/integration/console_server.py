"""Airflow's api-server app, in this process, on a real socket: Airflow's REST API and UI
routes plus the plugins it mounts (crmsync's console at /crmsync), with the simple auth
manager's login. For the fuzzer (test_fuzz_http.py) and the hand-written edge cases
(test_edge_inputs.py): requests go over HTTP as a browser's or a script's would, and the
console's own calls to Airflow's REST API (a run started from the console) reach this server.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from typing import Any

import uvicorn

from conftest import ensure_schema, insert_local

CUSTOMERS = (("Dana Levi", "dana@example.co.il", "050-1234567"), ("דנה כהן", None, "03-5551234"),
             ("Acme Ltd", "office@acme.example", None))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConsoleServer:
    def __init__(self, pg: Any, dagbag: Any, *, webhook_token: str) -> None:
        self.pg, self.dagbag, self.webhook_token = pg, dagbag, webhook_token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.console_url = self.url + "/crmsync"
        self._saved: dict[str, str | None] = {}

    def _setenv(self, name: str, value: str) -> None:
        self._saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def __enter__(self) -> "ConsoleServer":
        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import sync_bag_to_db

        from crmsync.console import webhooks

        self._setenv("AIRFLOW_CONN_CRM_POSTGRES", json.dumps(self.pg.airflow_conn()))
        self._setenv("AIRFLOW_CONN_CRMSYNC_WEBHOOK", json.dumps({"conn_type": "generic", "password": self.webhook_token}))
        # One secret for the whole process (Airflow caches what signs and checks tokens): long enough for HS512
        os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
        self._setenv("CRMSYNC_CONSOLE_AIRFLOW_URL", self.url)  # the console's calls to Airflow come back here
        webhooks.SETTINGS.forget()
        DagBundlesManager().sync_bundles_to_db()
        sync_bag_to_db(self.dagbag, bundle_name="dags-folder", bundle_version=None)  # the DAGs Airflow's API knows
        self.app = create_app(apps="core")
        manager = get_auth_manager()
        self.admin_token = manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
        self.viewer_token = manager.generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))
        # a user the auth manager lets read no DAG (no role): the console must refuse every page
        self.nobody_token = manager.generate_jwt(SimpleAuthManagerUser(username="nobody", role=None))
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start the api-server app"
        self.run_ids_before = self.run_ids()
        return self

    def __exit__(self, *exc: Any) -> None:
        from crmsync.console import webhooks

        self.server.should_exit = True
        self.thread.join(10)
        self.delete_new_runs()
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        webhooks.SETTINGS.forget()

    # -- what a request may have written ----------------------------------------------------------
    def run_ids(self) -> set[tuple[str, str]]:
        from sqlalchemy import select

        from airflow.models import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            return {tuple(r) for r in session.execute(select(DagRun.dag_id, DagRun.run_id))}

    def paused(self) -> dict[str, bool]:
        from sqlalchemy import select

        from airflow.models import DagModel
        from airflow.utils.session import create_session

        with create_session() as session:
            return dict(session.execute(select(DagModel.dag_id, DagModel.is_paused)).all())

    def delete_new_runs(self) -> None:
        """The runs the console started here (queued, never run: no scheduler) are not left to later tests."""
        from sqlalchemy import delete, tuple_

        from airflow.models import DagRun
        from airflow.utils.session import create_session

        new = self.run_ids() - self.run_ids_before
        if new:
            with create_session() as session:
                session.execute(delete(DagRun).where(tuple_(DagRun.dag_id, DagRun.run_id).in_(list(new))))

    def customers_side(self) -> tuple:
        with self.pg.connect() as conn:
            return conn.execute(
                "SELECT (SELECT count(*) FROM sumit_customers), "
                "(SELECT count(*) FROM crm_inbox WHERE status <> 'rejected'), "
                "(SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM crm_sync_errors), "
                "(SELECT count(*) FROM crm_sync_runs)").fetchone()

    def rejected_triggers(self) -> int:
        with self.pg.connect() as conn:
            return conn.execute("SELECT count(*) FROM crm_inbox WHERE status = 'rejected'").fetchone()[0]

    def writes(self) -> tuple:
        """Everything a console or receiver request can change: runs, pauses, the customers
        database, and (last) the triggers the receiver kept as rejected."""
        return (frozenset(self.run_ids()), tuple(sorted(self.paused().items())), self.customers_side(),
                self.rejected_triggers())

    # -- something to read -----------------------------------------------------------------------
    def seed(self) -> None:
        """crmsync's tables with a few customers and retry-queue records (once; again after a
        test of another module dropped or replaced them)."""
        with self.pg.connect() as conn:
            present = conn.execute("SELECT to_regclass('crm_sync_errors') IS NOT NULL").fetchone()[0]
            # this module's customers, not just any (another test on this worker may have left its own)
            if present and conn.execute("SELECT count(*) FROM sumit_customers WHERE name = %s",
                                        [CUSTOMERS[0][0]]).fetchone()[0]:
                return
        ensure_schema(self.pg)
        ids = [insert_local(self.pg, name, email=email, phone=phone) for name, email, phone in CUSTOMERS]
        with self.pg.connect() as conn:
            conn.execute("UPDATE sumit_customers SET sumit_customer_id = '9001' WHERE id = %s", [ids[0]])
            for customer_id in ids[1:]:
                conn.execute("INSERT INTO crm_sync_errors (dag_id, dag_run_id, phase, customer_id, error, record_key) "
                             "VALUES ('crm_push_customers', 'seed', 'push', %s, 'SUMIT refused: <b>bad</b>', %s)",
                             [customer_id, str(customer_id)])
