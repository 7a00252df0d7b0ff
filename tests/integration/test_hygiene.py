"""Sync hygiene through Airflow, under both API profiles: failed records retry themselves,
a bad share of rejects fails the run, vanished customers are flagged, full resync."""

from __future__ import annotations

import pytest

from conftest import LIST_PATH, list_requests, push_requests, set_sumit_connection
from test_dags import ENGLISH, HEBREW, customers, ensure_schema, insert_local, last_run, rows

pytestmark = pytest.mark.usefixtures("env")
LENIENT = {"max_reject_ratio": 1}  # these tests look at the queue, not at the threshold


def queue(pg, customer_id):
    return rows(pg, "SELECT status, attempts, error FROM crm_sync_errors WHERE phase = 'push' AND customer_id = %s"
                    " ORDER BY id", customer_id)


def pushes_of(sandbox, profile, name):
    return [r for r in push_requests(sandbox, profile)
            if name in str((r["body"] or {}).get("Customer") or (r["body"] or {}).get("Details"))]


def test_a_failed_push_is_retried_by_later_runs_until_it_succeeds(pg, sandbox, run_dag, profile):
    ids = sandbox.control.add_customers([ENGLISH])
    assert run_dag("crm_pull_customers") == "success"
    local_id = customers(pg)[str(ids[0])][1]
    sandbox.control.set_faults(reject_names=[ENGLISH["Name"]])

    assert run_dag("crm_push_customers", {"customer_ids": [local_id], **LENIENT}) == "success"
    assert queue(pg, local_id)[-1][:2] == ("pending", 1)
    # The row did not change since its last sync, yet the next sync retries it: it is queued.
    assert run_dag("crm_bidirectional_sync", LENIENT) == "success"
    assert queue(pg, local_id)[-1][:2] == ("pending", 2)
    assert "Rejected by sandbox rule" in queue(pg, local_id)[-1][2]

    sandbox.control.clear_faults()
    assert run_dag("crm_bidirectional_sync") == "success"
    assert queue(pg, local_id) == [("resolved", 2, queue(pg, local_id)[0][2])]
    assert last_run(pg)[7] == 1 and last_run(pg)[1] == "success"
    assert len(pushes_of(sandbox, profile, ENGLISH["Name"])) == 3


def test_a_record_that_keeps_failing_is_given_up_and_named(pg, sandbox, run_dag, profile):
    ensure_schema(pg)
    stubborn = insert_local(pg, "Stubborn Ltd")
    sandbox.control.set_faults(reject_names=["Stubborn Ltd"])
    conf = {"max_record_attempts": 2, **LENIENT}
    assert run_dag("crm_bidirectional_sync", conf) == "success"
    assert run_dag("crm_bidirectional_sync", conf) == "success"
    assert queue(pg, stubborn)[-1][:2] == ("gave_up", 2)
    run = rows(pg, "SELECT status, gave_up, message FROM crm_sync_runs ORDER BY id DESC LIMIT 1")[0]
    assert run[0] == "warning" and run[1] == 1 and f"gave up on customer {stubborn} after 2 failed attempts" in run[2]

    assert run_dag("crm_bidirectional_sync", conf) == "success"
    assert len(pushes_of(sandbox, profile, "Stubborn")) == 2  # given up: not sent again
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET name = 'Stubborn Ltd (fixed)' WHERE id = %s", (stubborn,))
    assert run_dag("crm_bidirectional_sync", conf) == "success"
    assert len(pushes_of(sandbox, profile, "Stubborn")) == 3  # changed again: tried again, and accepted
    assert queue(pg, stubborn)[-1][0] == "gave_up"  # the history stays
    assert rows(pg, "SELECT sumit_customer_id FROM sumit_customers WHERE id = %s", stubborn)[0][0] is not None


def test_retry_failed_only_skips_the_pull_and_sends_just_the_queue(pg, sandbox, run_dag, profile):
    ensure_schema(pg)
    failed = insert_local(pg, "Failed Once")
    sandbox.control.set_faults(reject_names=["Failed Once"])
    assert run_dag("crm_push_customers", {"customer_ids": [failed], **LENIENT}) == "success"
    sandbox.control.clear_faults()
    insert_local(pg, "Changed But Not Queued")
    sandbox.control.add_customers([ENGLISH])
    lists_before = len(list_requests(sandbox, profile))

    assert run_dag("crm_bidirectional_sync", {"retry_failed_only": True}) == "success"
    assert len(list_requests(sandbox, profile)) == lists_before  # no pull
    assert sorted(c["Name"] for c in sandbox.control.customers()) == sorted(["Failed Once", ENGLISH["Name"]])
    assert queue(pg, failed)[-1][0] == "resolved"


def test_too_many_rejects_fail_the_run_naming_counts_and_reasons(pg, sandbox, run_dag):
    sandbox.control.add_customers([{"Name": f"C{i}"} for i in range(10)])
    sandbox.control.add_raw([{"Name": "no id"}])
    strict = {"max_reject_ratio": 0.05, "min_rejects_to_fail": 1}
    assert run_dag("crm_pull_customers", strict) == "failed"  # 1 of 11 = 9.1% > 5%
    run = last_run(pg)
    assert run[1] == "failed"
    assert ("1 of 11 records (9.1%) were skipped or refused, more than max_reject_ratio 5.0% "
            "(and at least min_rejects_to_fail 1)") in run[10]
    assert "no CustomerID" in run[10]
    assert len(customers(pg)) == 10  # every good record was kept

    sandbox.control.add_customers([{"Name": f"D{i}"} for i in range(20)])
    assert run_dag("crm_pull_customers", strict) == "success"  # 1 of 31 = 3.2%
    assert last_run(pg)[1] == "warning"


def test_vanished_customers_are_flagged_not_deleted_and_come_back_cleanly(pg, sandbox, run_dag, profile):
    ids = sandbox.control.add_customers([HEBREW, ENGLISH, {"Name": "Third"}])
    assert run_dag("crm_bidirectional_sync") == "success"
    removed = sandbox.control.customers()[1]
    sandbox.control.delete([ids[1]])

    assert run_dag("crm_pull_customers") == "success"
    local = customers(pg)
    assert len(local) == 3 and "crm_missing_since" in local[str(ids[1])][8]
    assert "crm_missing_since" not in local[str(ids[0])][8]
    assert rows(pg, "SELECT vanished FROM crm_sync_runs ORDER BY id DESC LIMIT 1")[0][0] == 1

    with pg.connect() as conn:  # a local edit of a vanished customer is not pushed back
        conn.execute("UPDATE sumit_customers SET city = 'Eilat' WHERE sumit_customer_id = %s", (str(ids[1]),))
    pushes = len(push_requests(sandbox, profile))
    assert run_dag("crm_bidirectional_sync") == "success"
    assert len(push_requests(sandbox, profile)) == pushes
    assert rows(pg, "SELECT vanished FROM crm_sync_runs ORDER BY id DESC LIMIT 1")[0][0] == 0  # not flagged twice

    sandbox.control.add_customers([removed])  # restored with the same CustomerID
    assert run_dag("crm_pull_customers") == "success"
    local = customers(pg)
    assert len(local) == 3 and "crm_missing_since" not in local[str(ids[1])][8]


def test_an_interrupted_pull_flags_nothing(pg, sandbox, run_dag, profile):
    ids = sandbox.control.add_customers([{"Name": f"C{i}"} for i in range(120)])  # page_size 50: 3 pages
    assert run_dag("crm_pull_customers") == "success"
    sandbox.control.delete([ids[0]])
    # one page at a time, so the 20 failures all fall on page 2 (read ahead, they spread over the pages)
    set_sumit_connection(sandbox.url, read_concurrency=1)
    sandbox.control.set_faults(fail_next={"count": 20, "status": 503, "after": 1, "endpoint": LIST_PATH[profile]})
    assert run_dag("crm_pull_customers") == "failed"
    flagged = rows(pg, "SELECT count(*) FROM sumit_customers WHERE metadata ? 'crm_missing_since'")[0][0]
    assert flagged == 0
    sandbox.control.clear_faults()
    assert run_dag("crm_pull_customers") == "success"
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE metadata ? 'crm_missing_since'")[0][0] == 1


def test_full_resync_recompares_everything_without_duplicating(pg, sandbox, run_dag):
    sandbox.control.add_customers([HEBREW, ENGLISH])
    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:  # drift: the row says it agrees with the CRM but does not
        conn.execute("ALTER TABLE sumit_customers DISABLE TRIGGER sumit_customers_touch_updated_at")
        conn.execute("UPDATE sumit_customers SET city = 'stale' WHERE name = %s", (ENGLISH["Name"],))
        conn.execute("UPDATE sumit_customers c SET synced_fingerprint = crmsync_local_fingerprint(c)")
        conn.execute("ALTER TABLE sumit_customers ENABLE TRIGGER sumit_customers_touch_updated_at")
    assert run_dag("crm_pull_customers") == "success"
    assert rows(pg, "SELECT city FROM sumit_customers WHERE name = %s", ENGLISH["Name"])[0][0] == "stale"

    assert run_dag("crm_pull_customers", {"full_resync": True}) == "success"
    assert rows(pg, "SELECT city FROM sumit_customers WHERE name = %s", ENGLISH["Name"])[0][0] == "Haifa"
    assert len(customers(pg)) == 2
    assert last_run(pg)[2:6] == (2, 0, 1, 1)
