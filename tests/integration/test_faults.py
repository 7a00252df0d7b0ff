"""Faults injected for real while a DAG runs: the worker SIGKILLed mid-pull and mid-push, the
customers database restarted mid-pull, and two runs writing at once.

Each test injects the fault into a real ``airflow dags test`` process (or holds the real lock),
asserts how the run ended, and then checks the database: every CRM customer exactly once,
field for field, nothing half written. The runs are slowed with the sandbox's latency and
small pages so a fault lands in the middle of the work; every wait polls with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (API_KEY, LIST_PATH, PUSH_PATHS, airflow_popen, data_snapshot, duplicates, lost_and_duplicated,
                      lost_since, set_sumit_connection)
from crmsync.db.locking import LOCK_KEY
from crmsync.sumit.budget import BURST
from test_dags import ensure_schema, insert_local, last_run, rows

BOOT_SECONDS = 120  # an `airflow dags test` process reaches its first task in ~8 s; this is the bound
SHORT_LOCK_WAIT = {"CRMSYNC_LOCK_TIMEOUT_SECONDS": "20"}  # a leaked lock fails a run fast, not in 10 min
GUIDE_KEYS = {"name": "Name", "email": "Email", "phone": "Phone", "company_name": "CompanyName",
              "tax_id": "TaxID", "address": "Address", "city": "City", "state": "State", "country": "Country",
              "zip_code": "ZipCode"}
DB_UNREACHABLE = "The customers database (connection 'crm_postgres') is unreachable"


def make_customers(count: int, prefix: str = "Customer") -> list[dict]:
    """Customers with every synced field set (Hebrew and leading zeros included), so "equal
    to its CRM copy" compares all ten columns, not mostly NULLs."""
    return [{"Name": f'{prefix} {i:03d} בע"מ', "Email": f"c{i}@example.co.il", "Phone": f"050-{i:07d}",
             "CompanyName": f"חברה {i}", "TaxID": f"{i:09d}", "Address": f"רחוב הרצל {i}", "City": "חיפה",
             "State": "North", "Country": "IL", "ZipCode": f"{3100000 + i}"} for i in range(count)]


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def spawn(tmp_path):
    """Start CLI runs; any still alive when the test ends (a failed assertion) are killed."""
    started: list[subprocess.Popen] = []

    def start(name: str, dag_id: str, conf: dict | None = None, **env: str) -> subprocess.Popen:
        process = airflow_popen("dags", "test", dag_id, "-c", json.dumps(conf or {}),
                                output=tmp_path / f"{name}.log", home=_home(tmp_path, name), **env)
        process.output = tmp_path / f"{name}.log"  # type: ignore[attr-defined]
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _home(tmp_path: Path, name: str) -> Path:
    home = tmp_path / f"airflow-{name}"
    home.mkdir()
    return home


def output_of(process: subprocess.Popen) -> str:
    text = process.output.read_text(encoding="utf-8", errors="replace")  # type: ignore[attr-defined]
    assert API_KEY not in text  # a fault path is still a path the key must not take
    return text


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    return process.wait(timeout=timeout), output_of(process)


def wait_for(what: str, predicate, *, timeout: float = BOOT_SECONDS, process: subprocess.Popen | None = None):
    """Poll ``predicate`` until it is truthy; fail naming ``what`` at the deadline, or at once
    if ``process`` ended first (its output then says why)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before {what}:\n{output_of(process)[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.1)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the run and all its children: no handler, no cleanup, as when a worker dies."""
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL


def lock_holders(pg) -> list[str]:
    """application_name of every session holding crmsync's writer lock (crmsync names it after the run)."""
    return [r[0] for r in rows(pg, "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                                   " WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s"
                                   " AND l.objid::bigint = %s AND l.objsubid = 2", *LOCK_KEY)]


def served(sandbox, paths) -> int:
    stats = sandbox.control.stats()
    return sum(stats.get(path, 0) for path in paths)


def wait_until_quiet(sandbox, paths, *, latency: float) -> int:
    """Requests a killed worker sent are still carried out by SUMIT: wait until their count has
    not moved for twice the latency, and return it."""
    deadline = time.monotonic() + 30
    count = served(sandbox, paths)
    while time.monotonic() < deadline:
        time.sleep(2 * latency)
        count, previous = served(sandbox, paths), count
        if count == previous:
            return count
    pytest.fail("the sandbox kept receiving requests after the run was killed")


def local_count(pg) -> int:
    return rows(pg, "SELECT count(*) FROM sumit_customers")[0][0]


def assert_same_as_crm(pg, sandbox) -> int:
    """The table is what a fault-free run leaves: every CRM customer exactly once, each row
    equal to its CRM copy in all ten synced columns and recorded as in agreement with it
    (no half-written row), nothing local beyond them. Returns the number of customers."""
    crm = {str(c["CustomerID"]): c for c in sandbox.control.customers()}
    local = rows(pg, f"SELECT sumit_customer_id, {', '.join(GUIDE_KEYS)},"
                     " synced_fingerprint IS NOT DISTINCT FROM crmsync_local_fingerprint(c)"
                     " FROM sumit_customers c ORDER BY id")
    ids = [r[0] for r in local]
    assert len(ids) == len(set(ids)), "a CRM customer is in the table twice"
    assert sorted(ids, key=str) == sorted(crm, key=str), "rows lost, or rows the CRM does not have"
    half_written = [r[0] for r in local
                    if list(r[1:11]) != [crm[r[0]].get(key) or None for key in GUIDE_KEYS.values()] or not r[11]]
    assert half_written == [], f"rows differing from their CRM copy: {half_written[:10]}"
    pending = rows(pg, "SELECT count(*) FROM crm_sync_errors WHERE status = 'pending'")[0][0]
    assert pending == 0
    return len(ids)


# -- SIGKILL --------------------------------------------------------------------------------------


def test_sigkill_mid_pull_loses_nothing_and_frees_the_lock(pg, sandbox, guide_env, spawn, run_dag, monkeypatch,
                                                            reliability):
    sandbox.control.add_customers(make_customers(60))
    set_sumit_connection(sandbox.url, page_size=10, read_concurrency=1)  # six pages, one at a time
    sandbox.control.set_faults(latency_ms=400)
    pull = spawn("pull", "crm_pull_customers")
    wait_for("second listing page", lambda: served(sandbox, [LIST_PATH["guide"]]) >= 2, process=pull)
    assert [name.split()[:2] for name in lock_holders(pg)] == [["crmsync", "crm_pull_customers"]]

    kill(pull)
    # PostgreSQL ends the dead worker's session, and its lock with it: nothing to clean up.
    wait_for("release of the killed run's lock", lambda: lock_holders(pg) == [], timeout=15)
    # The pull is one transaction (its plan is checked before it commits): the killed run wrote nothing.
    assert local_count(pg) == 0
    assert rows(pg, "SELECT count(*) FROM crm_sync_history")[0][0] == 0
    assert served(sandbox, [LIST_PATH["guide"]]) < 6  # the kill landed mid-listing

    sandbox.control.clear_faults()
    monkeypatch.setenv("CRMSYNC_LOCK_TIMEOUT_SECONDS", SHORT_LOCK_WAIT["CRMSYNC_LOCK_TIMEOUT_SECONDS"])
    assert run_dag("crm_pull_customers") == "success"
    reliability("SIGKILL mid-pull, between pages", outcome="nothing written (one transaction); lock freed; re-run completed",
                **dict(zip(("lost", "duplicated"), lost_and_duplicated(pg, sandbox))))
    assert assert_same_as_crm(pg, sandbox) == 60
    assert last_run(pg)[2:6] == (60, 60, 0, 0)


def test_sigkill_mid_push_of_updates_is_finished_by_a_rerun(pg, sandbox, guide_env, spawn, run_dag, monkeypatch,
                                                             reliability):
    sandbox.control.add_customers(make_customers(40))
    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:  # a local edit of every customer: 40 updates to push
        conn.execute("UPDATE sumit_customers SET city = 'עכו ' || id, email = 'new' || id || '@example.co.il'")
    ids = [r[0] for r in rows(pg, "SELECT id FROM sumit_customers ORDER BY id")]
    set_sumit_connection(sandbox.url, push_concurrency=2)
    sandbox.control.set_faults(latency_ms=300)
    update = PUSH_PATHS["guide"]

    push = spawn("push", "crm_push_customers", {"customer_ids": ids})
    wait_for("sixth update", lambda: served(sandbox, update) >= 6, process=push)
    assert [name.split()[:2] for name in lock_holders(pg)] == [["crmsync", "crm_push_customers"]]
    kill(push)
    wait_for("release of the killed run's lock", lambda: lock_holders(pg) == [], timeout=15)
    assert wait_until_quiet(sandbox, update, latency=0.3) < 40  # cut off mid-batch
    assert len(sandbox.control.customers()) == 40 and local_count(pg) == 40  # an update never adds a customer

    sandbox.control.clear_faults()
    monkeypatch.setenv("CRMSYNC_LOCK_TIMEOUT_SECONDS", SHORT_LOCK_WAIT["CRMSYNC_LOCK_TIMEOUT_SECONDS"])
    assert run_dag("crm_push_customers", {"customer_ids": ids}) == "success"
    lost, duplicated = lost_and_duplicated(pg, sandbox)
    reliability("SIGKILL mid-push batch (updates)", outcome="lock freed; re-run pushed every edit", lost=lost,
                duplicated=duplicated)
    assert last_run(pg)[7:9] == (40, 0)
    assert assert_same_as_crm(pg, sandbox) == 40  # every edit reached SUMIT, once per customer
    assert {c["City"] for c in sandbox.control.customers()} == {f"עכו {i}" for i in ids}


@pytest.mark.parametrize("rerun", ["crm_push_customers", "crm_bidirectional_sync"])
def test_sigkill_mid_push_of_creates_never_duplicates_a_customer(pg, sandbox, env, profile, rerun, spawn, run_dag,
                                                                  monkeypatch, reliability):
    """Never-synced customers are creates, and a killed worker loses the answers of those in
    flight. crmsync commits ``create_sent_at`` before sending a create. ``rest`` creates with
    the local id as ExternalIdentifier and SearchMode 2, so a re-run's create finds what the
    killed run made; its listing does not show that id, so a re-run's pull recognises those
    customers by content. ``guide`` has no lookup: the create carries the local id as the
    custom field ExternalIdentifier, and the next run finds those customers in SUMIT's listing
    (the pull's, or one the push reads for it) and links them instead of creating them again."""
    ensure_schema(pg)
    ids = [insert_local(pg, **{column: value for column, value in zip(GUIDE_KEYS, record.values())})
           for record in make_customers(30, prefix="Local")]
    concurrency = 2  # the push starts BURST (2) times as wide: 4 creates in flight
    set_sumit_connection(sandbox.url, push_concurrency=concurrency)
    sandbox.control.set_faults(latency_ms=300)
    paths = PUSH_PATHS[profile]

    push = spawn("push", "crm_push_customers", {"customer_ids": ids})
    wait_for("twelfth create", lambda: served(sandbox, paths) >= 12, process=push)
    kill(push)
    wait_until_quiet(sandbox, paths, latency=0.3)
    in_crm = len(sandbox.control.customers())
    linked = rows(pg, "SELECT count(*) FROM sumit_customers WHERE sumit_customer_id IS NOT NULL")[0][0]
    assert 12 <= in_crm < 30 and local_count(pg) == 30
    unanswered = in_crm - linked  # created in SUMIT, the id never written back
    # The kill came while creates were in flight (SUMIT sleeps 300 ms before carrying each out):
    # they were carried out with no one to answer, which is what the re-run must cope with.
    assert 1 <= unanswered <= 2 * BURST * concurrency

    sandbox.control.clear_faults()
    monkeypatch.setenv("CRMSYNC_LOCK_TIMEOUT_SECONDS", SHORT_LOCK_WAIT["CRMSYNC_LOCK_TIMEOUT_SECONDS"])
    assert run_dag(rerun, {"customer_ids": ids}) == "success"
    extra_in_crm = len(sandbox.control.customers()) - 30
    print(f"{profile}, re-run {rerun}: {unanswered} creates answered to no one at the kill, "
          f"{extra_in_crm} duplicates in SUMIT")
    reliability(f"SIGKILL mid-push batch (creates, {profile} profile)",
                outcome=f"re-run ({rerun.removeprefix('crm_')}) linked every customer, created none twice",
                lost=rows(pg, "SELECT count(*) FROM sumit_customers WHERE sumit_customer_id IS NULL")[0][0],
                duplicated=duplicates(pg, sandbox))
    assert extra_in_crm == 0 and duplicates(pg, sandbox) == 0
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE create_sent_at IS NOT NULL")[0][0] == 0
    assert run_dag("crm_pull_customers") == "success"
    assert assert_same_as_crm(pg, sandbox) == 30


# -- the database restarted -------------------------------------------------------------------------


def test_database_restart_mid_pull_is_retried_or_named(pg, sandbox, guide_env, spawn, run_dag, reliability):
    sandbox.control.add_customers(make_customers(60))
    set_sumit_connection(sandbox.url, page_size=10, read_concurrency=1)  # the restart lands between pages
    sandbox.control.set_faults(latency_ms=400)
    pull = spawn("pull", "crm_pull_customers", CRMSYNC_TASK_RETRIES="2", CRMSYNC_TASK_RETRY_DELAY_SECONDS="1")
    wait_for("second listing page", lambda: served(sandbox, [LIST_PATH["guide"]]) >= 2, process=pull)
    assert lock_holders(pg)  # the pull is at work
    pg.restart()  # fast shutdown: every session is terminated mid-run

    code, output = finish(pull)
    assert DB_UNREACHABLE in output  # the try that met the restart failed naming the database
    if code == 0:  # Airflow's retry pulled everything again
        assert served(sandbox, [LIST_PATH["guide"]]) > 6
        assert last_run(pg)[:2] == ("pull", "success")
    else:  # every retry met the database down: a clear failure, not a hang
        assert last_run(pg)[1] == "failed" and DB_UNREACHABLE in last_run(pg)[10]

    sandbox.control.clear_faults()
    assert run_dag("crm_pull_customers") == "success"
    reliability("PostgreSQL restarted mid-pull",
                outcome=("Airflow retry succeeded" if code == 0 else "failed naming the database")
                + "; re-run completed", **dict(zip(("lost", "duplicated"), lost_and_duplicated(pg, sandbox))))
    assert assert_same_as_crm(pg, sandbox) == 60
    assert last_run(pg)[2] == 60


# -- two writers ----------------------------------------------------------------------------------


def test_a_manual_push_waits_for_the_running_sync(pg, sandbox, guide_env, spawn, run_dag, reliability):
    sandbox.control.add_customers(make_customers(60))
    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:
        edited = [r[0] for r in conn.execute(
            "UPDATE sumit_customers SET phone = '03-' || id WHERE id <= 5 RETURNING id").fetchall()]
    # thirty slow pages, one at a time: the sync holds the lock for up to a minute, longer than a
    # loaded machine takes to start the push's Airflow (twelve pages, 24 s, were not always enough);
    # the latency is lifted as soon as the push is seen waiting
    set_sumit_connection(sandbox.url, page_size=2, read_concurrency=1)
    sandbox.control.set_faults(latency_ms=2000)
    before = len(sandbox.control.requests())
    listings = served(sandbox, [LIST_PATH["guide"]])

    sync = spawn("sync", "crm_bidirectional_sync")
    wait_for("first page of the sync's pull", lambda: served(sandbox, [LIST_PATH["guide"]]) > listings, process=sync)
    push = spawn("push", "crm_push_customers", {"customer_ids": edited})
    wait_for("the push waiting for the lock", lambda: "Waiting for the crmsync lock" in output_of(push),
             process=push)
    assert served(sandbox, PUSH_PATHS["guide"]) == 0  # the push is held back while the sync writes
    sandbox.control.set_faults(latency_ms=None)  # let the sync finish; the push then takes the lock

    sync_code, _ = finish(sync)
    push_code, push_output = finish(push)
    assert (sync_code, push_code) == (0, 0)
    waiting = push_output[push_output.index("Waiting for the crmsync lock"):].splitlines()[0]
    assert "'crmsync crm_bidirectional_sync " in waiting  # it names the run holding the lock
    assert "Took the crmsync lock after waiting" in push_output

    # No push reached SUMIT before the sync's pull had read its last page.
    log = [r["path"] for r in sandbox.control.requests()[before:]]
    last_listing = max(i for i, path in enumerate(log) if path == LIST_PATH["guide"])
    first_push = min(i for i, path in enumerate(log) if path in PUSH_PATHS["guide"])
    reliability("two runs at once (manual push during the sync)", outcome="push waited for the lock; both succeeded",
                **dict(zip(("lost", "duplicated"), lost_and_duplicated(pg, sandbox))))
    assert first_push > last_listing
    assert log.count(LIST_PATH["guide"]) == 30 and log[:30] == [LIST_PATH["guide"]] * 30

    assert assert_same_as_crm(pg, sandbox) == 60
    assert {str(c["CustomerID"]): c["Phone"] for c in sandbox.control.customers()} == {
        r[0]: r[1] for r in rows(pg, "SELECT sumit_customer_id, phone FROM sumit_customers")}
    assert [r[0] for r in rows(pg, "SELECT status FROM crm_sync_runs ORDER BY id")] == ["success"] * 3


def test_a_writer_that_cannot_get_the_lock_in_time_fails_naming_the_holder(pg, sandbox, guide_env, run_dag,
                                                                          monkeypatch, reliability):
    ensure_schema(pg)  # so the report can write the failed run's row
    sandbox.control.add_customers(make_customers(3))
    # Local customers, so a loss could show: one of the company's own, one SUMIT holds too (its
    # e-mail: a run that wrote would link or change it), one synced before.
    insert_local(pg, "Local Only Ltd", email="local-only@example.co.il", city="Haifa")
    insert_local(pg, "Customer 001 Local", email="c1@example.co.il", phone="03-1111111")
    insert_local(pg, "Synced Before Ltd", email="synced@example.co.il", sumit_customer_id="777001")
    before = data_snapshot(pg, sandbox)
    assert len(before["sumit_customers"]) == 3
    monkeypatch.setenv("CRMSYNC_LOCK_TIMEOUT_SECONDS", "1")
    with pg.connect(autocommit=True) as holder:
        holder.execute("SELECT set_config('application_name', 'crmsync nightly import', false),"
                       " pg_advisory_lock(%s, %s)", LOCK_KEY)
        started = time.monotonic()
        state = run_dag("crm_pull_customers")
        waited = time.monotonic() - started

    message = last_run(pg)[10]
    after = data_snapshot(pg, sandbox)
    reliability("lock held too long by another writer", outcome="failed naming the holder; nothing sent or written",
                lost=lost_since(before, after), duplicated=duplicates(pg, sandbox))
    assert (state, waited >= 1) == ("failed", True)
    assert after == before
    assert "prepare_customers_table: Gave up after 1.0 s waiting for the crmsync lock held by" in message
    assert "'crmsync nightly import'" in message and "CRMSYNC_LOCK_TIMEOUT_SECONDS" in message
    assert sandbox.control.requests() == []  # nothing was read, nothing written
    assert local_count(pg) == 3
