"""The receiver of SUMIT's triggers over a real socket: the console's app served by uvicorn, as the
api-server serves it, against the real customers database and Airflow's metadata database.
(tests/e2e/test_triggers.py does the same through a live api-server, scheduler and sandbox.)"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from urllib.parse import unquote, urlencode

import httpx
import pytest
import uvicorn

from console_server import free_port
from test_dags import rows

pytestmark = pytest.mark.usefixtures("rest_env")
TOKEN = secrets.token_urlsafe(32)
ANSWER_MEDIAN_BOUND_MS = 160  # the receiver's answer (docs/near-real-time.md: 16 ms median, 25 ms at the 95th)
ANSWER_P95_BOUND_MS = 250


class AccessLog(logging.Handler):
    """uvicorn's access log lines (``127.0.0.1:5000 - "POST /webhooks/sumit/*** HTTP/1.1" 202``), as
    the api-server writes them: the line that would hold the token if the receiver did not hide it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def access_log():
    """uvicorn.access's records, on a handler of its own: whatever an earlier server in this process did
    to the logger (``access_log=False`` stops its propagation for good), its lines reach this one."""
    logger = logging.getLogger("uvicorn.access")
    handler, level = AccessLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(scope="module")
def receiver(access_log):
    """The console app on 127.0.0.1, with the webhook connection's token; its access log on."""
    os.environ["AIRFLOW_CONN_CRMSYNC_WEBHOOK"] = json.dumps({"conn_type": "generic", "password": TOKEN})
    from crmsync.console import webhooks
    from crmsync.console.app import app

    webhooks.SETTINGS.forget()
    port = free_port()
    # log_config=None: uvicorn's own configuration would replace handlers process-wide; log_level=None:
    # it would set uvicorn.access's level too (access lines are INFO; the fixture above sets it).
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level=None,
                                           access_log=True))
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


def access_lines(access_log) -> list[str]:
    """The access log's lines, each as written and URL-decoded (uvicorn writes ``***`` as ``%2A%2A%2A``)."""
    return [form for line in access_log.lines for form in (line, unquote(line))]


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


def test_triggers_are_stored_before_the_answer_and_one_run_is_asked_for(pg, run_dag, receiver, caplog, access_log):
    assert run_dag("crm_pull_customers") == "success"  # the tables, and the DAGs in Airflow's database
    clear_queued_runs()
    caplog.set_level(logging.DEBUG)
    access_log.lines.clear()
    first = httpx.post(f"{receiver}/{TOKEN}", **form({"Folder": "customers", "Type": "Update", "EntityID": 41}))
    assert first.status_code == 202, first.text
    assert first.json() == {"stored": 1, "collapsed": 0, "run_requested": True}
    assert queued_apply_runs() == 1
    second = httpx.post(f"{receiver}/{TOKEN}", **form(["customers", 41, "Update", {"Customers_FullName": ["x"]}]))
    third = httpx.post(f"{receiver}/{TOKEN}", json=[{"Folder": "customers", "Type": "Delete", "EntityID": "42"}])
    assert second.json() == {"stored": 0, "collapsed": 1, "run_requested": False}  # a queued run covers it
    assert third.status_code == 202 and queued_apply_runs() == 1
    assert [r[:5] for r in stored(pg)] == [("41", "update", "pending", 2, "array"), ("42", "delete", "pending", 1, "object")]
    # The access log wrote a line per trigger, the path's token rewritten to *** (webhooks.HideToken).
    assert [unquote(line).split(" - ", 1)[1] for line in access_log.lines] == [
        '"POST /webhooks/sumit/*** HTTP/1.1" 202'] * 3, access_log.lines
    assert not [line for line in access_lines(access_log) if TOKEN in line]
    assert TOKEN not in caplog.text


def test_a_wrong_token_gets_404_and_nothing_is_stored_or_asked(pg, run_dag, receiver, caplog, access_log):
    assert run_dag("crm_pull_customers") == "success"
    clear_queued_runs()
    caplog.set_level(logging.DEBUG)
    access_log.lines.clear()
    wrong = (TOKEN[:-1], TOKEN + "x", "", "x" * len(TOKEN))
    for token in wrong:
        answer = httpx.post(f"{receiver}/{token}", **form({"Folder": "customers", "Type": "Update", "EntityID": 1}))
        assert answer.status_code == 404, (token, answer.status_code)  # as documented: not 405, not 401
    assert stored(pg) == [] and queued_apply_runs() == 0
    # A wrong token is as secret as the right one (it may be the right one mistyped): *** in the log
    # too, as for every path under the receiver's (HideToken runs before routing).
    assert [unquote(line).split(" - ", 1)[1] for line in access_log.lines] == [
        '"POST /webhooks/sumit/*** HTTP/1.1" 404'] * 4, access_log.lines
    assert not [line for line in access_lines(access_log) if TOKEN[:-1] in line or wrong[-1] in line]
    assert TOKEN[:-1] not in caplog.text and wrong[-1] not in caplog.text


def test_another_method_with_the_token_keeps_it_out_of_the_log(receiver, caplog, access_log):
    caplog.set_level(logging.DEBUG)
    access_log.lines.clear()
    answers = [httpx.request(method, f"{receiver}/{token}").status_code
               for method in ("GET", "PUT") for token in (TOKEN, "x" * len(TOKEN))]
    assert len(access_log.lines) == 4, access_log.lines
    assert not [line for line in access_lines(access_log) if TOKEN in line], access_log.lines
    assert TOKEN not in caplog.text
    assert answers[1::2] == [404, 404]  # a wrong token gets 404, whatever the method
    assert answers[0::2] == [405, 405]  # the right one: POST only
    sub_path = httpx.post(f"{receiver}/{TOKEN}/more", json={"EntityID": 1})
    assert sub_path.status_code == 404
    assert not [line for line in access_lines(access_log) if TOKEN in line], access_log.lines


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
    # docs: 16 ms median, 25 ms at the 95th percentile; ten times that fails, a busy machine's noise does not.
    assert timings[100] <= ANSWER_MEDIAN_BOUND_MS and timings[190] <= ANSWER_P95_BOUND_MS, (timings[100], timings[190])
    assert rows(pg, "SELECT count(*), sum(hits) FROM crm_inbox WHERE status = 'pending'") == [(150, 200)]
    assert queued_apply_runs() == 1
