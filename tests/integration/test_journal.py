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


EDITS = [  # one statement each, as a run's writes are: every kind of change the journal records
    "phone = phone || '9'",
    "email = NULL, city = 'Haifa'",
    "name = name || ' Ltd', metadata = metadata || '{\"Tier\": \"gold\"}'",
    "metadata = (metadata - 'Size') || '{\"last_synced_at\": \"2026-12-07\"}'",
    "metadata = jsonb_set(metadata, '{crm_missing_since}', '\"2026-12-07\"')",
    "sumit_customer_id = sumit_customer_id || '-x', zip_code = NULL, metadata = metadata || '{\"Note\": null}'",
    "metadata = metadata || '{\"last_synced_at\": \"2026-12-08\"}'",  # bookkeeping only: not journaled
]


def test_the_journal_holds_exactly_the_fields_each_update_changed(pg):
    """Each customer's journal row against a diff computed here, field by field, from the row's
    journaled values before and after (crmsync_journal_values): the statement compares the
    columns one by one, so a column it forgot would show here."""
    import json

    from conftest import ensure_schema

    ensure_schema(pg)
    with pg.connect() as conn:
        conn.execute("INSERT INTO sumit_customers (sumit_customer_id, name, email, phone, city, zip_code, metadata) "
                     "SELECT 'J' || g, 'Journal ' || g, 'j' || g || '@example.co.il', '050-000000' || g, 'Eilat', "
                     "'8800' || g, jsonb_build_object('Size', g, 'last_synced_at', 'x') FROM generate_series(1, 7) AS g")
        for number, edit in enumerate(EDITS):
            before = dict(conn.execute("SELECT id, crmsync_journal_values(c) FROM sumit_customers AS c").fetchall())
            conn.execute("SELECT set_config('crmsync.journal_run', %s, false)",
                         [json.dumps({"dag_id": "journal_test", "dag_run_id": f"edit-{number}", "direction": "pull"})])
            conn.execute(f"UPDATE sumit_customers SET {edit} WHERE id IN (SELECT id FROM sumit_customers ORDER BY id "
                         "LIMIT 3)")
            after = dict(conn.execute("SELECT id, crmsync_journal_values(c) FROM sumit_customers AS c").fetchall())
            journaled = {customer: (b, a) for customer, b, a in conn.execute(
                "SELECT customer_id, before, after FROM crm_sync_changes WHERE dag_run_id = %s", [f"edit-{number}"])}
            assert journaled == {c: expected_diff(before[c], after[c]) for c in before
                                 if before[c] != after[c]}, edit
        assert len(journaled) == 0 and conn.execute("SELECT count(*) FROM crm_sync_changes").fetchone()[0] == 18


def expected_diff(old: dict, new: dict) -> tuple[dict, dict]:
    keys = [k for k in new if k != "metadata" and old.get(k) != new.get(k)]
    before, after = {k: old.get(k) for k in keys}, {k: new.get(k) for k in keys}
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    meta = sorted(k for k in old_meta.keys() | new_meta.keys() if old_meta.get(k, ...) != new_meta.get(k, ...))
    if meta:
        before["metadata"] = {k: old_meta.get(k) for k in meta}
        after["metadata"] = {k: new_meta.get(k) for k in meta}
    return before, after


def test_the_journal_reads_a_large_update_with_a_hash_join_after_small_ones(pg):
    """The journal's statement joins the statement's old and new rows. PostgreSQL keeps the
    trigger's plan for the session, planned when it saw a few rows; a nested loop there compares
    every old row with every new one, and made a 250-customer pulled page's journal take 20-30 ms
    instead of 6 (docs/performance.md). Checked on the plan PostgreSQL ran (auto_explain), after
    the small updates a push makes first."""
    import json

    from conftest import ensure_schema

    ensure_schema(pg)
    with pg.connect() as conn:
        conn.execute("INSERT INTO sumit_customers (sumit_customer_id, name, city) "
                     "SELECT 'H' || g, 'Hash ' || g, 'Eilat' FROM generate_series(1, 400) AS g")
        conn.execute("SELECT set_config('crmsync.journal_run', %s, false)",
                     [json.dumps({"dag_id": "journal_test", "dag_run_id": "plan", "direction": "pull"})])
        for number in range(1, 8):  # one customer at a time: past the 5 custom plans, to the kept one
            conn.execute("UPDATE sumit_customers SET city = 'Arad' WHERE sumit_customer_id = %s", [f"H{number}"])
        notices: list[str] = []
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_level = notice"):
            conn.execute(f"SET auto_explain.{setting}")
        updated = conn.execute("UPDATE sumit_customers SET city = 'Dimona' WHERE sumit_customer_id LIKE 'H%'").rowcount
        conn.execute("SET auto_explain.log_min_duration = -1")
        assert updated == 400
        [journal_plan] = [n for n in notices if "INSERT INTO crm_sync_changes" in n]
        assert "Hash Join" in journal_plan and "Nested Loop" not in journal_plan, journal_plan
        assert conn.execute("SELECT count(*) FROM crm_sync_changes WHERE dag_run_id = 'plan'").fetchone()[0] == 400
