"""crmsync on several workers: Airflow 3 with the CeleryExecutor, two Celery workers on Redis.

The same layout as docker-compose.yaml, without Docker: api-server, scheduler and
dag-processor, metadata in PostgreSQL, a local Redis as the broker, and two
``airflow celery worker`` processes with their own names (``-H worker1@host``, which is also
the ``hostname`` their task instances record) and log-server ports, each running one task at
a time (``--concurrency 1``). Every process shares the Execution API's URL and JWT secret.

What it proves: the tasks of one run may run on different workers (they share nothing but
PostgreSQL and XCom); a worker killed mid-pull (SIGKILL of its whole process tree, as if its
machine died) loses nothing: the scheduler notices the missing heartbeats, the other worker
retries the pull, nothing is lost or duplicated and the writer lock died with the dead
session; and two runs on two workers take turns on the writer lock.

Celery puts a task on whichever idle worker asks first, and a run's tasks follow each other,
so both workers are idle at every step: where a test needs a task on a given worker it says
so through Celery's remote control (``set_consuming``), or keeps the other worker busy.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import shutil
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from crmsync.db.locking import LOCK_KEY

from .live_helpers import (PUSH_DAG, SYNC_DAG, AirflowApi, add_customers, advisory_lock_holders,
                           lock_holds)

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from airflow_local import LiveAirflow  # noqa: E402

SEEDED = 60  # CRM customers in the sandbox
PAGE_SIZE = 10  # so a pull of them is seven listing calls, each as slow as the sandbox's latency_ms
HEARTBEAT_TIMEOUT_SECONDS = 20  # [scheduler] task_instance_heartbeat_timeout: a dead task is noticed after this
RUN_TIMEOUT_SECONDS = 120
LIST_PATH = "/website/customers/getlist/"
# A task logs "Released the crmsync lock." just after unlocking, so the next holder's "Took ..."
# line may come a few milliseconds before it; a writing phase overlapping another lasts seconds.
LOG_ORDER_SLACK = timedelta(milliseconds=200)


@pytest.fixture(scope="module")
def celery_airflow():
    """The CeleryExecutor Airflow for this module; everything it started is stopped after its
    last test, also when a test or the start failed. Its AIRFLOW_HOME (component and task
    logs) stays in artifacts/e2e-celery-airflow/."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server (the Celery broker) is not installed: run scripts/system-deps.sh as root "
                    "(apt-get install redis-server)")
    env = {
        "CRMSYNC_TASK_RETRIES": "1",
        "CRMSYNC_TASK_RETRY_DELAY_SECONDS": "2",
        "CRMSYNC_LOCK_TIMEOUT_SECONDS": "120",
        # Only the tests' manual runs: unpausing the sync starts no scheduled run for today's 03:00.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
    }
    with LiveAirflow(ROOT / "artifacts" / "e2e-celery-airflow", port=0, password=secrets.token_urlsafe(12),
                     executor="celery", workers=2, worker_concurrency=1, seed_demo=SEEDED, local_customers=True,
                     # one listing page at a time: the kill below must land between two pages
                     sumit_extra={"page_size": PAGE_SIZE, "read_concurrency": 1}, env=env, log=print) as live:
        yield live


@pytest.fixture(scope="module")
def celery_api(celery_airflow) -> AirflowApi:
    api = AirflowApi(celery_airflow)
    for dag_id in (SYNC_DAG, PUSH_DAG):
        api.unpause(dag_id)
    return api


@pytest.fixture(autouse=True)
def both_workers_take_tasks(request, celery_airflow):
    """Each test starts with both workers up and consuming and no sandbox fault; a failed test
    shows the tail of every component's log."""
    live = celery_airflow
    for name in live.workers:
        if live.processes[name].poll() is not None:  # killed by the test before
            live.start_worker(name)
        live.set_consuming(name, True)
    live.sandbox.control.clear_faults()
    yield
    live.sandbox.control.clear_faults()
    if getattr(request.node, "failed", False):
        print(live.logs_tail(chars=2500))


def wait_until(what: str, predicate, timeout: float, live: LiveAirflow, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s\n{live.logs_tail(chars=2000)}")
        time.sleep(interval)
    return result


def listing_calls(live: LiveAirflow) -> int:
    return live.sandbox.control.stats().get(LIST_PATH, 0)


@contextlib.contextmanager
def writer_lock_held(pg):
    """crmsync's writer lock, held by this test's own session for the block."""
    with pg.connect(autocommit=True) as conn:
        conn.execute("SET application_name = 'e2e test holding the crmsync lock'")
        conn.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEY)
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEY)


def lost_and_duplicated(live: LiveAirflow) -> tuple[int, int]:
    """(CRM customers no local row links to, duplicates): two local rows for one CRM customer
    or with the same content, and two SUMIT customers with the same content or made for the
    same local row (ExternalIdentifier): what a pull or push done twice would leave."""
    crm = live.sandbox.control.customers()
    with live.pg.connect() as conn:
        local = conn.execute("SELECT sumit_customer_id, name, email, phone FROM sumit_customers").fetchall()
    linked = Counter(str(r[0]) for r in local if r[0] is not None)
    lost = len({str(c["CustomerID"]) for c in crm} - set(linked))
    extra = lambda counter: sum(n - 1 for n in counter.values() if n > 1)  # noqa: E731
    duplicated = (extra(linked) + extra(Counter(r[1:] for r in local))
                  + extra(Counter((c.get("Name"), c.get("Email"), c.get("Phone")) for c in crm))
                  + extra(Counter(c["ExternalIdentifier"] for c in crm if c.get("ExternalIdentifier"))))
    return lost, duplicated


def test_the_tasks_of_one_sync_run_on_different_workers(celery_airflow, celery_api):
    """prepare_customers_table on worker1, pull_from_crm on worker2, the rest wherever Celery
    puts them: the run succeeds and pulls every CRM customer."""
    live, api = celery_airflow, celery_api
    node = {name: node for name, (node, _) in live.workers.items()}
    in_crm = len(live.sandbox.control.customers())  # what the pull reads (the push then adds the local-only ones)
    live.set_consuming("worker2", False)
    # While the test holds the writer lock, prepare_customers_table waits for it, running on worker1:
    # time to hand the queue to worker2 before the pull is queued.
    with writer_lock_held(live.pg):
        run_id = api.trigger(SYNC_DAG)["dag_run_id"]
        prepare = api.wait_for_task(SYNC_DAG, run_id, "prepare_customers_table", {"running"}, timeout=60)
        assert prepare["hostname"] == node["worker1"], prepare
        live.set_consuming("worker1", False)
        live.set_consuming("worker2", True)
    api.wait_for_task(SYNC_DAG, run_id, "pull_from_crm", {"running", "success", "failed", "up_for_retry"}, timeout=60)
    live.set_consuming("worker1", True)
    finished = api.wait_for_run(SYNC_DAG, run_id, timeout=RUN_TIMEOUT_SECONDS)

    hosts = api.hostnames(SYNC_DAG, run_id)
    print(f"\n{SYNC_DAG} {run_id} ran on: {hosts}")
    assert finished["state"] == "success", (api.task_states(SYNC_DAG, run_id), live.logs_tail())
    assert hosts["prepare_customers_table"] == node["worker1"] and hosts["pull_from_crm"] == node["worker2"], hosts
    assert set(hosts.values()) <= set(node.values()) and len(set(hosts.values())) >= 2, hosts
    assert "Pulled: " in api.task_log(SYNC_DAG, run_id, "report")
    assert lost_and_duplicated(live) == (0, 0)
    with live.pg.connect() as conn:
        status, fetched = conn.execute("SELECT status, fetched FROM crm_sync_runs WHERE dag_run_id = %s",
                                       (run_id,)).fetchone()
    assert (status, fetched) == ("success", in_crm)


def test_a_worker_killed_mid_pull_is_replaced_by_the_other(celery_airflow, celery_api, reliability):
    """SIGKILL of the worker running pull_from_crm, after two of its seven pages: the scheduler
    fails the silent task after the heartbeat timeout, the other worker retries it, the run
    succeeds; nothing lost or duplicated, and the writer lock died with the dead session."""
    live, api = celery_airflow, celery_api
    more = live.sandbox.control.add_customers([
        {"Name": f"Celery kill {n}", "Email": f"kill{n}-{secrets.token_hex(3)}@example.co.il"} for n in range(5)])
    live.sandbox.control.set_faults(latency_ms=1000)  # a listing call a second
    pages = math.ceil(len(live.sandbox.control.customers()) / PAGE_SIZE)
    calls_before = listing_calls(live)
    run_id = api.trigger(SYNC_DAG)["dag_run_id"]
    pull = api.wait_for_task(SYNC_DAG, run_id, "pull_from_crm", {"running"}, timeout=60)
    wait_until("second listing page", lambda: listing_calls(live) - calls_before >= 2, 30, live)
    holders = advisory_lock_holders(live.pg)
    assert [name.split()[:2] for _, name in holders] == [["crmsync", SYNC_DAG]], holders

    victim = live.worker_of(pull["hostname"])
    survivor = next(name for name in live.workers if name != victim)
    assert victim, f"pull_from_crm ran on {pull['hostname']!r}, not one of {live.workers}"
    assert api.task_states(SYNC_DAG, run_id)["pull_from_crm"] == "running"  # still mid-pull
    killed = live.kill_worker(victim)
    killed_at = datetime.now(timezone.utc)
    calls_at_kill = listing_calls(live) - calls_before
    print(f"\nkilled {victim} ({len(killed)} processes: pids {killed}) after {calls_at_kill} of {pages} "
          f"listing calls; {survivor} is left")
    assert calls_at_kill < pages  # the kill landed mid-listing
    live.sandbox.control.set_faults(latency_ms=None)  # the retry may be quick
    # PostgreSQL ends the dead task's session, and the lock with it: nothing to clean up.
    wait_until("release of the killed task's lock", lambda: advisory_lock_holders(live.pg) == [], 15, live)

    finished = api.wait_for_run(SYNC_DAG, run_id, timeout=HEARTBEAT_TIMEOUT_SECONDS + RUN_TIMEOUT_SECONDS)
    tries = api.tries(SYNC_DAG, run_id, "pull_from_crm")
    hosts = api.hostnames(SYNC_DAG, run_id)
    print(f"pull_from_crm tries: {[(t['try_number'], t['state'], t['hostname']) for t in tries]}; "
          f"the run's tasks (last try): {hosts}")
    if len(tries) > 1 and tries[1].get("start_date"):
        retry_after = datetime.fromisoformat(tries[1]["start_date"]) - killed_at
        print(f"the retry started {retry_after.total_seconds():.0f} s after the kill")
    lost, duplicated = lost_and_duplicated(live)
    reliability("SIGKILL of the Celery worker running the pull (CeleryExecutor, 2 workers)",
                outcome="heartbeat timeout; retried on the other worker; lock freed; run succeeded",
                lost=lost, duplicated=duplicated)
    assert finished["state"] == "success", (api.task_states(SYNC_DAG, run_id), live.logs_tail())
    assert [(t["try_number"], t["hostname"]) for t in tries] == [
        (1, live.workers[victim][0]), (2, live.workers[survivor][0])], tries
    assert tries[0]["state"] != "success" and tries[1]["state"] == "success", tries
    detected = [line for line in live.log_file("scheduler").read_text(errors="replace").splitlines()
                if "Detected a task instance without a heartbeat" in line and run_id in line]
    assert len(detected) == 1 and live.workers[victim][0] in detected[0], detected  # the scheduler noticed
    retry_log = api.task_log(SYNC_DAG, run_id, "pull_from_crm", try_number=2)
    assert "Took the crmsync lock (no other crmsync task is writing customers)." in retry_log  # no wait: it died
    assert (lost, duplicated) == (0, 0)
    crm_ids = {str(c["CustomerID"]) for c in live.sandbox.control.customers()}
    assert {str(i) for i in more} <= crm_ids
    with live.pg.connect() as conn:
        per_id = dict(conn.execute("SELECT sumit_customer_id, count(*) FROM sumit_customers"
                                   " WHERE sumit_customer_id IS NOT NULL GROUP BY 1").fetchall())
    assert {i: per_id.get(i, 0) for i in crm_ids} == dict.fromkeys(crm_ids, 1)  # every CRM customer exactly once
    assert advisory_lock_holders(live.pg) == []


def test_a_push_and_a_sync_on_two_workers_take_turns_on_the_writer_lock(celery_airflow, celery_api, reliability):
    """A user pushes two new customers while the sync pulls (docs/concurrency.md's "a manual push while
    the 03:00 sync runs"), on the other worker: the push waits for the sync's lock, naming it;
    no two writing tasks of the runs hold it at once; both succeed; each customer is in SUMIT once."""
    live, api = celery_airflow, celery_api
    ids = add_customers(live.pg, "Celery push אחת", "Celery push two")
    # A pull of about 14 s: the push run's first task reaches the lock well before it ends.
    live.sandbox.control.set_faults(latency_ms=2000)
    sync_id = api.trigger(SYNC_DAG)["dag_run_id"]
    pull = api.wait_for_task(SYNC_DAG, sync_id, "pull_from_crm", {"running"}, timeout=60)
    wait_until("the sync's pull holding the writer lock",
               lambda: [name.split()[:2] for _, name in advisory_lock_holders(live.pg)] == [["crmsync", SYNC_DAG]],
               30, live)
    push_id = api.trigger(PUSH_DAG, {"customer_ids": ids})["dag_run_id"]

    sync = api.wait_for_run(SYNC_DAG, sync_id, timeout=RUN_TIMEOUT_SECONDS)
    push = api.wait_for_run(PUSH_DAG, push_id, timeout=RUN_TIMEOUT_SECONDS)
    writers = {(SYNC_DAG, sync_id): ("prepare_customers_table", "pull_from_crm", "push_changed"),
               (PUSH_DAG, push_id): ("prepare_customers_table", "push_to_crm")}
    hosts = {dag_id: api.hostnames(dag_id, run_id) for dag_id, run_id in writers}
    print(f"\nhostnames: {hosts}")
    holds = sorted((hold, f"{dag_id}.{task_id}") for (dag_id, run_id), tasks in writers.items() for task_id in tasks
                   for hold in lock_holds(api.task_log_events(dag_id, run_id, task_id)))
    print("writer lock held:\n" + "\n".join(f"  {start:%H:%M:%S.%f} - {end:%H:%M:%S.%f}  {who}"
                                           for (start, end), who in holds))
    waits = {task_id: line for task_id in writers[(PUSH_DAG, push_id)]
             for line in api.task_log(PUSH_DAG, push_id, task_id).splitlines()
             if "Waiting for the crmsync lock held by" in line}
    print(f"push run waited: {waits}")
    lost, duplicated = lost_and_duplicated(live)
    reliability("two runs at once on two Celery workers (push during the sync's pull)",
                outcome="push waited for the lock on the other worker; both succeeded", lost=lost, duplicated=duplicated)

    assert (sync["state"], push["state"]) == ("success", "success"), (
        api.task_states(SYNC_DAG, sync_id), api.task_states(PUSH_DAG, push_id))
    assert hosts[PUSH_DAG]["prepare_customers_table"] != pull["hostname"]  # the pull's worker was busy
    assert len(set(hosts[SYNC_DAG].values()) | set(hosts[PUSH_DAG].values())) == 2, hosts
    assert waits, "the push run never waited for the writer lock"
    assert all(SYNC_DAG in line for line in waits.values()), waits  # the holder is named
    assert len(holds) == 5, holds  # every writing task took and released the lock once
    for ((_, end), before), ((start, _), after) in zip(holds, holds[1:]):
        assert start >= end - LOG_ORDER_SLACK, f"{after} took the writer lock at {start} while {before} held it until {end}"
    assert (lost, duplicated) == (0, 0)
    with live.pg.connect() as conn:
        linked = conn.execute("SELECT sumit_customer_id FROM sumit_customers WHERE id = ANY(%s)", (ids,)).fetchall()
    assert all(r[0] for r in linked) and len(linked) == 2, linked
    assert advisory_lock_holders(live.pg) == []
