"""The receiver of SUMIT's triggers over a real socket: the console's app served by uvicorn, as the
api-server serves it, against the real customers database and Airflow's metadata database.
(tests/e2e/test_triggers.py does the same through a live api-server, scheduler and sandbox.)"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from test_dags import rows

pytestmark = pytest.mark.usefixtures("rest_env")
TOKEN = secrets.token_urlsafe(32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def receiver():
    """The console app on 127.0.0.1, with the webhook connection's token."""
    os.environ["AIRFLOW_CONN_CRMSYNC_WEBHOOK"] = json.dumps({"conn_type": "generic", "password": TOKEN})
    from crmsync.console import webhooks
    from crmsync.console.app import app

    webhooks.SETTINGS.forget()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}/webhooks/sumit"
    server.should_exit = True
    thread.join(10)
    del os.environ["AIRFLOW_CONN_CRMSYNC_WEBHOOK"]
    webhooks.SETTINGS.forget()


def form(value) -> dict:
    return {"content": urlencode({"json": json.dumps(value)}),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


def stored(pg):
    return rows(pg, "SELECT entity_id, action, status, hits, shape, reason, excerpt FROM crm_inbox ORDER BY id")


def queued_apply_runs():
    from sqlalchemy import func, select

    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(select(func.count()).select_from(DagRun).where(
            DagRun.dag_id == "crm_apply_crm_events", DagRun.state == "queued"))


def clear_queued_runs():
    from sqlalchemy import delete

    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == "crm_apply_crm_events"))


def test_triggers_are_stored_before_the_answer_and_one_run_is_asked_for(pg, run_dag, receiver, caplog):
    assert run_dag("crm_pull_customers") == "success"  # the tables, and the DAGs in Airflow's database
    clear_queued_runs()
    caplog.set_level(logging.DEBUG)
    first = httpx.post(f"{receiver}/{TOKEN}", **form({"Folder": "customers", "Type": "Update", "EntityID": 41}))
    assert first.status_code == 202, first.text
    assert first.json() == {"stored": 1, "collapsed": 0, "run_requested": True}
    assert queued_apply_runs() == 1
    second = httpx.post(f"{receiver}/{TOKEN}", **form(["customers", 41, "Update", {"Customers_FullName": ["x"]}]))
    third = httpx.post(f"{receiver}/{TOKEN}", json=[{"Folder": "customers", "Type": "Delete", "EntityID": "42"}])
    assert second.json() == {"stored": 0, "collapsed": 1, "run_requested": False}  # a queued run covers it
    assert third.status_code == 202 and queued_apply_runs() == 1
    assert [r[:5] for r in stored(pg)] == [("41", "update", "pending", 2, "array"), ("42", "delete", "pending", 1, "object")]
    assert TOKEN not in caplog.text


def test_a_wrong_token_gets_404_and_nothing_is_stored_or_asked(pg, run_dag, receiver, caplog):
    assert run_dag("crm_pull_customers") == "success"
    clear_queued_runs()
    caplog.set_level(logging.DEBUG)
    for token in (TOKEN[:-1], TOKEN + "x", "", "x" * len(TOKEN)):
        answer = httpx.post(f"{receiver}/{token}", **form({"Folder": "customers", "Type": "Update", "EntityID": 1}))
        assert answer.status_code in (404, 405), token
    assert httpx.get(f"{receiver}/{TOKEN}").status_code == 405
    assert stored(pg) == [] and queued_apply_runs() == 0
    assert TOKEN not in caplog.text


def test_oversized_and_malformed_bodies_are_refused_with_a_reason(pg, run_dag, receiver):
    assert run_dag("crm_pull_customers") == "success"
    clear_queued_runs()
    big = httpx.post(f"{receiver}/{TOKEN}", content=b"json=" + b"x" * 1_000_001,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413 and "1,000,000 bytes" in big.json()["detail"]
    assert stored(pg) == []

    def chunks():  # no Content-Length: the limit holds on what arrives
        for _ in range(20):
            yield b"y" * 100_000

    streamed = httpx.post(f"{receiver}/{TOKEN}", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert stored(pg) == []

    bad = httpx.post(f"{receiver}/{TOKEN}", **form({"Folder": "customers", "Type": "Update"}))
    assert bad.status_code == 400 and "no EntityID" in bad.json()["detail"]
    hostile = httpx.post(f"{receiver}/{TOKEN}", content="<script>alert(1)</script>",
                         headers={"Content-Type": "text/html"})
    assert hostile.status_code == 400
    kept = stored(pg)
    assert [(r[1], r[2]) for r in kept] == [("unreadable", "rejected")] * 2
    assert "no EntityID" in kept[0][5] and kept[1][6] == "<script>alert(1)</script>"
    assert queued_apply_runs() == 0  # nothing to apply: no run asked for
    assert rows(pg, "SELECT count(*) FROM sumit_customers")[0][0] == 0


def test_without_the_webhook_connection_every_trigger_gets_404(pg, run_dag, receiver, monkeypatch):
    from crmsync.console import webhooks

    monkeypatch.delenv("AIRFLOW_CONN_CRMSYNC_WEBHOOK")
    webhooks.SETTINGS.forget()
    try:
        answer = httpx.post(f"{receiver}/{TOKEN}", **form({"Folder": "customers", "Type": "Update", "EntityID": 1}))
        assert answer.status_code == 404
    finally:
        monkeypatch.undo()
        webhooks.SETTINGS.forget()


def test_the_answer_comes_fast_and_a_burst_asks_for_one_run(pg, run_dag, receiver, measured):
    assert run_dag("crm_pull_customers") == "success"
    clear_queued_runs()
    timings = []
    with httpx.Client() as client:
        for n in range(200):
            started = time.perf_counter()
            answer = client.post(f"{receiver}/{TOKEN}", **form({"Folder": "customers", "Type": "Update",
                                                                 "EntityID": 1000 + n % 150}))
            timings.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 202
    timings.sort()
    measured(f"SUMIT's triggers: the receiver stored and answered 200 triggers: median {timings[100]:.1f} ms, "
             f"95th percentile {timings[190]:.1f} ms, slowest {timings[-1]:.1f} ms")
    assert rows(pg, "SELECT count(*), sum(hits) FROM crm_inbox WHERE status = 'pending'") == [(150, 200)]
    assert queued_apply_runs() == 1
