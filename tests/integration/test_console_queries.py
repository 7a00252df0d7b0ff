"""The console's reads against PostgreSQL after real runs through Airflow: every sync state the
Customers page filters by, made by a real pull or push, the searches, the pages' HTML (escaped),
the retry queue's "ignore", a customer's history and a run's tab."""

from __future__ import annotations

import pytest

from crmsync.console.pages import customers_page_values, render, render_customers
from crmsync.console.queries import ConsoleQueries, CustomerQuery

pytestmark = pytest.mark.usefixtures("guide_env")

HOSTILE = "<img src=x onerror=alert(1)>"


def ids_of(pg, sql, *args):
    with pg.connect() as conn:
        return [r[0] for r in conn.execute(sql, args).fetchall()]


def local_id(pg, sumit_id):
    return ids_of(pg, "SELECT id FROM sumit_customers WHERE sumit_customer_id = %s", sumit_id)[0]


@pytest.fixture
def queries(pg):
    with pg.connect() as conn:
        yield ConsoleQueries(conn)


def listed(queries, search=None, state=None, page_size=500):
    rows, total = queries.customers(CustomerQuery.parse(search, state, 1, page_size))
    return rows, total


def test_every_sync_state_comes_from_real_runs(pg, sandbox, run_dag, queries):
    sandbox.control.add_customers([
        {"CustomerID": f"S{n}", "Name": f"State {n} Ltd", "Email": f"state{n}@example.co.il", "Phone": f"050-000000{n}"}
        for n in range(1, 7)])
    assert run_dag("crm_pull_customers") == "success"
    synced, changed, missing, failed, conflict, given_up = (local_id(pg, f"S{n}") for n in range(1, 7))
    with pg.connect() as conn:
        never = conn.execute("INSERT INTO sumit_customers (name, email) VALUES ('Local Only Ltd', 'local@example.co.il') "
                             "RETURNING id").fetchone()[0]
        conn.execute("UPDATE sumit_customers SET city = 'Haifa' WHERE id = ANY(%s)", ([changed, conflict],))
    sandbox.control.delete(["S3"])
    sandbox.control.add_customers([{"CustomerID": "S5", "Name": "State 5 Ltd", "Email": "state5@crm.example"}])
    assert run_dag("crm_pull_customers") in ("success", "warning")  # S3 vanished, S5 in conflict
    # pushes SUMIT refuses: one retried later (pending), one given up at once
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET name = 'Refused One', city = 'Eilat' WHERE id = %s", (failed,))
        conn.execute("UPDATE sumit_customers SET name = 'Refused Two', city = 'Eilat' WHERE id = %s", (given_up,))
    sandbox.control.set_faults(reject_names=["Refused One", "Refused Two"])
    try:
        run_dag("crm_push_customers", {"customer_ids": [failed]})
        run_dag("crm_push_customers", {"customer_ids": [given_up], "max_record_attempts": 1})
    finally:
        sandbox.control.set_faults(reject_names=None)

    expected = {"synced": synced, "changed": changed, "missing": missing, "push_failed": failed,
                "conflict": conflict, "given_up": given_up, "never_synced": never}
    mine = set(expected.values())
    states = {row["id"]: row["sync_state"] for row in listed(queries)[0] if row["id"] in mine}
    assert states == {customer: state for state, customer in expected.items()}
    for state, customer in expected.items():
        rows, total = listed(queries, state=state)
        assert customer in {r["id"] for r in rows} and total == len(rows)
        assert all(r["sync_state"] == state for r in rows)
        # a search within the state finds its customer (by name and by e-mail), and none of the others
        name, email = queries.customer(customer)["name"], queries.customer(customer)["email"]
        for search in (name, email):
            rows, total = listed(queries, search=search, state=state)
            assert [r["id"] for r in rows] == [customer] and total == 1, (state, search)
            other = next(s for s in expected if s != state)
            assert listed(queries, search=search, state=other) == ([], 0), (other, search)
    [row] = [r for r in listed(queries, state="push_failed")[0] if r["id"] == failed]
    assert row["push_error"]["status"] == "pending" and row["push_error"]["attempts"] == 1
    assert row["push_error"]["error"].startswith("SUMIT rejected the request on ")  # SUMIT's answer, kept whole
    assert "Rejected by sandbox rule: customer name 'Refused One' is refused" in row["push_error"]["error"]

    # "Ignore" takes the record out of the queue: the customer is then just changed locally.
    [error_id] = ids_of(pg, "SELECT id FROM crm_sync_errors WHERE customer_id = %s AND status = 'pending'", failed)
    assert queries.ignore_errors([error_id, 10**12]) == [error_id]
    assert queries.ignore_errors([error_id]) == []  # already ignored: nothing changes
    assert queries.customer(failed)["sync_state"] == "changed"
    assert queries.error_counts().get("pending", 0) == 0


def test_search_by_name_email_phone_ids_and_the_page_is_escaped(pg, sandbox, run_dag, queries):
    sandbox.control.add_customers([
        {"CustomerID": "Q1", "Name": HOSTILE, "Email": "hostile@example.co.il", "Phone": "052-7654321"},
        {"CustomerID": "Q2", "Name": "100% Pure_Water Ltd", "Email": "water@example.co.il"},
        {"CustomerID": "Q3", "Name": "Pure Juice Ltd", "Email": "juice@example.co.il"}])
    assert run_dag("crm_pull_customers") == "success"
    hostile, water, juice = (local_id(pg, q) for q in ("Q1", "Q2", "Q3"))

    def found(search):
        return {r["id"] for r in listed(queries, search)[0]}

    assert found("pure") == {water, juice}  # any case, inside the name
    assert found("100%") == {water}  # % and _ are letters, not patterns
    assert found("_") == {water}
    assert found("juice@example") == {juice}
    assert found("7654321") == {hostile}
    assert found("0527654321") == found("052 765-4321") == {hostile}  # however the phone is written
    assert found(str(juice)) >= {juice}  # a local id (also matches phones containing it, if any)
    assert found("Q2") == {water}  # a CRM id
    assert found("no such customer at all") == set()

    values = customers_page_values(queries, CustomerQuery.parse("onerror", None))
    assert values["total"] == 1 and values["rows"][0]["name"] == HOSTILE
    html = render_customers(values)
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'data-name="&lt;img src=x onerror=alert(1)&gt;"' in html  # attributes too: the dialogs read them

    with pytest.raises(ValueError, match="unknown sync state"):
        CustomerQuery.parse(None, "'; DROP TABLE sumit_customers; --")


def test_history_run_tab_conflicts_and_paging(pg, sandbox, run_dag, queries):
    sandbox.control.add_customers([{"CustomerID": f"P{n}", "Name": f"Paged {n:03d}"} for n in range(1, 121)])
    assert run_dag("crm_pull_customers") == "success"
    first = local_id(pg, "P1")
    sandbox.control.add_customers([{"CustomerID": "P1", "Name": "Paged 001", "Email": "new@example.co.il"}])
    assert run_dag("crm_pull_customers") == "success"
    [run_id] = ids_of(pg, "SELECT dag_run_id FROM crm_sync_runs ORDER BY id DESC LIMIT 1")

    history = queries.history(first)
    assert [h["direction"] for h in history] == ["pull", "pull"]  # newest first: the e-mail, then the creation
    assert history[0]["after"] == {"email": "new@example.co.il"} and history[1]["before"] is None
    changes = queries.run_changes("crm_pull_customers", run_id)
    assert [(c["customer_id"], c["name"]) for c in changes] == [(first, "Paged 001")]
    run = queries.run("crm_pull_customers", run_id)
    assert run["updated"] == 1 and run["status"] == "success"
    html = render("run.html", dag_id="crm_pull_customers", dag_run_id=run_id, run=run, changes=changes,
                  failures=[], outcome="Pulled")
    assert "new@example.co.il" in html and "Paged 001" in html

    query = CustomerQuery.parse("Paged", None, 3, 50)
    rows, total = queries.customers(query)
    assert total == 120 and len(rows) == 20 and rows[0]["name"] == "Paged 101"

    # a conflict: both sides changed one customer; the page lists it with both versions
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET city = 'Tel Aviv' WHERE id = %s", (first,))
    sandbox.control.add_customers([{"CustomerID": "P1", "Name": "Paged 001", "Email": "new@example.co.il",
                                    "City": "Jerusalem"}])
    assert run_dag("crm_bidirectional_sync") in ("success", "warning")
    rows, total = queries.conflicts()
    [conflict] = [r for r in rows if r["customer_id"] == first]
    assert conflict["local_values"]["city"] == "Tel Aviv" and conflict["crm_values"]["city"] == "Jerusalem"
    assert total >= 1


def test_the_runs_page_shows_sumits_triggers_and_escapes_what_a_refused_one_held(pg, sandbox, run_dag, queries):
    from crmsync.console.charts import runs_chart
    from crmsync.core.triggers import TriggerEvent
    from crmsync.db import inbox

    assert queries.inbox() is None  # no crm_inbox yet: the page leaves the section out
    assert run_dag("crm_pull_customers") == "success"
    empty = render("runs.html", tab="runs", runs=[], chart=runs_chart([], []), days=28, inbox=queries.inbox(),
                   run_url=lambda r: "#")
    assert "No trigger from SUMIT in these days" in empty
    with pg.connect() as conn:
        inbox.receive(conn, [TriggerEvent("7", "update", "customers", "object"),
                             TriggerEvent("8", "delete", "customers", "array")])
        inbox.reject(conn, "the trigger names no EntityID", HOSTILE)
        # The oldest waiting trigger came 90 minutes ago; an older refused one is not waiting.
        conn.execute("UPDATE crm_inbox SET first_received_at = now() - interval '90 minutes' WHERE entity_id = '7'")
        conn.execute("UPDATE crm_inbox SET first_received_at = now() - interval '3 hours' WHERE status = 'rejected'")
    summary = queries.inbox()
    assert (summary["pending"], summary["applied"], summary["rejected"]) == (2, 0, 1)
    assert 5400 <= summary["oldest_seconds"] <= 5400 + 60, summary["oldest_seconds"]
    assert [r["excerpt"] for r in summary["refused"]] == [HOSTILE]
    html = render("runs.html", tab="runs", runs=[], chart=runs_chart([], []), days=28, inbox=summary,
                  run_url=lambda r: "#")
    assert "No trigger from SUMIT" not in html and "2 waiting" in html and "1 refused" in html and "the trigger names no EntityID" in html
    assert f"(the oldest for {summary['oldest_seconds']:,} s)" in html
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_each_state_filter_lists_and_counts_exactly_what_the_view_says(pg, sandbox, run_dag, queries):
    # The filters start from each state's candidates (partial indexes, the small tables, the
    # local_changed flag), never from every row; the view crm_sync_customer_states computes each
    # customer's state from its fingerprints. Both must agree, on rows made by runs and on rows
    # another writer inserted or edited directly (local_changed NULL, or set by the trigger).
    sandbox.control.add_customers([{"Name": f"View {n}", "Email": f"view{n}@example.co.il"} for n in range(12)])
    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:
        linked = [r[0] for r in conn.execute("SELECT id FROM sumit_customers WHERE sumit_customer_id IS NOT NULL "
                                             "ORDER BY id").fetchall()]
        conn.execute("UPDATE sumit_customers SET city = 'Edited' WHERE id = ANY(%s)", [linked[:3]])
        conn.execute("UPDATE sumit_customers SET city = city WHERE id = %s", [linked[3]])  # no change: synced
        conn.execute("UPDATE sumit_customers SET metadata = metadata || '{\"crm_missing_since\": \"2026-12-01\"}' "
                     "WHERE id = %s", [linked[4]])
        # another writer's rows: linked and in sync, linked and not, and a local one
        conn.execute("INSERT INTO sumit_customers (sumit_customer_id, name, synced_fingerprint) "
                     "SELECT 'W1', 'Written in sync', md5('') ")  # fingerprint made in sync below
        conn.execute("UPDATE sumit_customers AS c SET synced_fingerprint = crmsync_local_fingerprint(c), "
                     "local_changed = NULL WHERE sumit_customer_id = 'W1'")
        conn.execute("INSERT INTO sumit_customers (sumit_customer_id, name, synced_fingerprint) "
                     "VALUES ('W2', 'Written apart', 'not its fingerprint')")
        conn.execute("INSERT INTO sumit_customers (name) VALUES ('Written locally')")
        # the totals (crm_sync_customer_counts) follow deletions and links undone too
        conn.execute("DELETE FROM sumit_customers WHERE id = %s", [linked[5]])
        conn.execute("UPDATE sumit_customers SET sumit_customer_id = NULL WHERE id = %s", [linked[6]])
        conn.execute("INSERT INTO crm_sync_errors (dag_id, dag_run_id, phase, customer_id, error, record_key, status) "
                     "VALUES ('t', 't', 'push', %s, 'HTTP 400', %s, 'pending')", [linked[0], str(linked[0])])
        # the states ahead of "never synced" on customers not linked (a push error, the missing
        # flag, an open conflict, a match waiting), one left never synced; the flagged customer
        # above gets an open conflict, which comes ahead of "missing"
        local = [r[0] for r in conn.execute("INSERT INTO sumit_customers (name) SELECT 'Local ' || g "
                                            "FROM generate_series(1, 5) AS g RETURNING id").fetchall()]
        conn.execute("INSERT INTO crm_sync_errors (dag_id, dag_run_id, phase, customer_id, error, record_key, status) "
                     "VALUES ('t', 't', 'push', %s, 'HTTP 400', %s, 'pending')", [local[0], str(local[0])])
        conn.execute("UPDATE sumit_customers SET metadata = metadata || '{\"crm_missing_since\": \"2026-12-01\"}' "
                     "WHERE id = %s", [local[1]])
        conn.execute("INSERT INTO crm_sync_conflicts (dag_id, dag_run_id, customer_id, sumit_customer_id, winner, "
                     "policy, local_values, crm_values) SELECT 't', 't', id, 'K', 'crm', 'newer_wins', '{}', '{}' "
                     "FROM unnest(%s::bigint[]) AS id", [[local[2], linked[4]]])
        conn.execute("INSERT INTO crm_sync_matches (side, customer_id, match_key, match_value, candidates, dag_id, "
                     "dag_run_id) VALUES ('local', %s, 'email', 'x', '[]', 't', 't')", [local[3]])
        truth: dict[str, set[int]] = {}
        for customer, state in conn.execute("SELECT id, sync_state FROM crm_sync_customer_states").fetchall():
            truth.setdefault(state, set()).add(customer)
    assert {"push_failed", "missing", "changed", "synced", "never_synced"} <= set(truth)
    assert len(truth["changed"]) == 3  # two edited (the third has a push error) and W2
    assert {local[0], linked[0]} <= truth["push_failed"] and local[1] in truth["missing"]
    assert {local[2], linked[4]} <= truth["conflict"] and truth["awaiting_match"] == {local[3]}
    assert local[4] in truth["never_synced"] and not set(local[:4]) & truth["never_synced"]
    for state in ("push_failed", "given_up", "conflict", "missing", "awaiting_match", "never_synced", "changed",
                  "synced"):
        rows, total = listed(queries, state=state, page_size=2)  # a short page: the total counts them all
        assert total == len(truth.get(state, ())), state
        assert [r["id"] for r in rows] == sorted(truth.get(state, ()))[:2], state
        assert all(r["sync_state"] == state for r in rows)
    rows, total = listed(queries, page_size=5)
    assert total == sum(len(v) for v in truth.values()) and [r["id"] for r in rows] == sorted(set().union(*truth.values()))[:5]
