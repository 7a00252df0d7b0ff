"""The change journal, through Airflow and PostgreSQL: what each run changed, per customer and
field, written in the same transaction as the change, and nothing when nothing changed."""

from __future__ import annotations

import pytest


pytestmark = pytest.mark.usefixtures("guide_env")

HISTORY = ("SELECT dag_id, direction, before, after FROM crm_sync_history "
           "WHERE customer_id = %s ORDER BY changed_at, direction")


def rows(pg, query, *args):
    with pg.connect() as conn:
        return conn.execute(query, args).fetchall()


def last_run(pg):
    return rows(pg, "SELECT dag_run_id, status, created, updated, changed, message FROM crm_sync_runs "
                    "ORDER BY id DESC LIMIT 1")[0]


def journal_rows(pg, run_id):
    return rows(pg, "SELECT customer_id, direction, before, after FROM crm_sync_changes WHERE dag_run_id = %s "
                    "ORDER BY customer_id", run_id)


def local_id(pg, sumit_id):
    return rows(pg, "SELECT id FROM sumit_customers WHERE sumit_customer_id = %s", sumit_id)[0][0]


def test_a_pull_journals_exactly_the_changed_fields_and_a_rerun_nothing(pg, sandbox, run_dag):
    sandbox.control.add_customers([
        {"CustomerID": "A1", "Name": "Dana Levi", "Email": "dana@example.co.il", "Phone": "050-1234567",
         "City": "חיפה", "Tier": "gold"},
        {"CustomerID": "A2", "Name": "Quiet Ltd", "Email": "quiet@example.com"},
    ])
    assert run_dag("crm_pull_customers") == "success"
    first_run, _, created, _, changed, message = last_run(pg)
    assert (created, changed) == (2, 2) and "Changed: 2" in message
    a1 = local_id(pg, "A1")
    # the creation is in the history, one row per customer
    assert rows(pg, HISTORY, a1) == [("crm_pull_customers", "pull", None,
                                      {"created": True, "sumit_customer_id": "A1"})]

    # In the CRM: a new e-mail, the phone blanked, a custom field changed; A2 untouched.
    sandbox.control.add_customers([{"CustomerID": "A1", "Name": "Dana Levi", "Email": "dana@new.co.il",
                                    "Phone": "", "City": "חיפה", "Tier": "platinum"}])
    assert run_dag("crm_pull_customers") == "success"
    second_run, _, _, updated, changed, message = last_run(pg)
    assert (updated, changed) == (1, 1) and "Changed: 1" in message
    [(customer, direction, before, after)] = journal_rows(pg, second_run)
    assert (customer, direction) == (a1, "pull")
    assert before == {"email": "dana@example.co.il", "phone": "050-1234567", "metadata": {"Tier": "gold"}}
    assert after == {"email": "dana@new.co.il", "phone": None, "metadata": {"Tier": "platinum"}}

    # Nothing changed: no journal row, changed = 0.
    assert run_dag("crm_pull_customers") == "success"
    third_run, _, _, _, changed, _ = last_run(pg)
    assert changed == 0 and journal_rows(pg, third_run) == []
    assert rows(pg, "SELECT count(*) FROM crm_sync_created WHERE dag_run_id = %s", third_run)[0][0] == 0

    # The query of docs/data-safety.md ("The change journal"): the customer's whole story, oldest first.
    history = rows(pg, HISTORY, a1)
    assert [h[1] for h in history] == ["pull", "pull"] and history[1][3]["email"] == "dana@new.co.il"


def test_vanished_flags_and_pushes_are_journaled_local_edits_are_not(pg, sandbox, run_dag):
    sandbox.control.add_customers([{"CustomerID": "V1", "Name": "Leaving Ltd"},
                                   {"CustomerID": "V2", "Name": "Staying Ltd", "City": "Eilat"}])
    assert run_dag("crm_pull_customers") == "success"
    v1, v2 = local_id(pg, "V1"), local_id(pg, "V2")
    sandbox.control.delete(["V1"])
    assert run_dag("crm_pull_customers") == "success"
    run_id = last_run(pg)[0]
    [(customer, direction, before, after)] = journal_rows(pg, run_id)
    assert customer == v1 and before == {"metadata": {"crm_missing_since": None}}
    assert after["metadata"]["crm_missing_since"]

    # An application's own edit is not a sync's change: not journaled.
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET city = 'Tel Aviv' WHERE id = %s", (v2,))
    assert rows(pg, "SELECT count(*) FROM crm_sync_changes WHERE customer_id = %s", v2)[0][0] == 0
    # ... but what the push then sends is.
    assert run_dag("crm_push_customers", {"customer_ids": [v2]}) == "success"
    push_run, _, _, _, changed, message = last_run(pg)
    assert changed == 1 and "Changed: 1" in message
    [(customer, direction, before, after)] = journal_rows(pg, push_run)
    assert (customer, direction, before) == (v2, "push", None)
    assert after["city"] == "Tel Aviv" and after["name"] == "Staying Ltd"


def test_a_pull_that_fails_half_way_writes_neither_customers_nor_journal(pg, sandbox, run_dag):
    sandbox.control.add_customers([{"CustomerID": f"F{i}", "Name": f"Page Customer {i}"} for i in range(120)])
    # page 1 answers, then every call fails beyond the hook's retries
    sandbox.control.set_faults(fail_next={"status": 503, "after": 1, "count": 50})
    assert run_dag("crm_pull_customers") == "failed"
    assert rows(pg, "SELECT count(*) FROM sumit_customers")[0][0] == 0
    assert rows(pg, "SELECT count(*) FROM crm_sync_history")[0][0] == 0
