"""crm_resolve_conflicts through Airflow, on a real PostgreSQL and the SUMIT sandbox, with
conflicts made by real pulls: keeping the side that lost writes it into the row and SUMIT
(journaled as 'resolve'), keeping the winner writes nothing, a row changed since is left alone
and named, a customer's newest conflict settles its older ones, unknown and resolved conflicts
are named or refused, a dry run writes nothing, the rewrite's own SQL check keeps a concurrent
edit, and the schema upgrade of an older database."""

from __future__ import annotations

import pytest

from conftest import data_snapshot, push_requests

RESOLVE = "crm_resolve_conflicts"

ALPHA = {"Name": "Alpha Ltd", "Email": "alpha@example.com", "Phone": "050-1111111", "City": "Haifa"}
BETA = {"Name": "Beta Ltd", "Email": "beta@example.com", "Phone": "050-2222222", "City": "Eilat"}
LOCAL_EDIT = {"email": "local@alpha.example", "city": "Local City"}
CRM_EDIT = {"Email": "crm@alpha.example", "Phone": "050-9999999"}
# The two versions of Alpha the conflict records, as the row holds them with each side kept.
LOCAL_SIDE = ("Alpha Ltd", "local@alpha.example", "050-1111111", "Local City")
CRM_SIDE = ("Alpha Ltd", "crm@alpha.example", "050-9999999", "Haifa")


def rows(pg, query, *args):
    with pg.connect() as conn:
        return conn.execute(query, args).fetchall()


def local(pg, sumit_id) -> tuple:
    return rows(pg, "SELECT name, email, phone, city FROM sumit_customers WHERE sumit_customer_id = %s",
                str(sumit_id))[0]


def in_crm(sandbox, sumit_id) -> tuple:
    record = next(c for c in sandbox.control.customers() if str(c["CustomerID"]) == str(sumit_id))
    return tuple(record.get(k) for k in ("Name", "Email", "Phone", "City"))


def conflicts(pg) -> list[tuple]:
    """Every conflict: id, customer, winner, resolution, resolved_by, whether resolved_at is set."""
    return rows(pg, "SELECT id, customer_id, winner, resolution, resolved_by, resolved_at IS NOT NULL"
                    " FROM crm_sync_conflicts ORDER BY id")


def resolve_row(pg):
    """The last resolve run's row: status, conflicts resolved, rewritten, unchanged, skipped, pushed,
    changed, message."""
    found = rows(pg, "SELECT status, conflicts, updated, unchanged, skipped, pushed, changed, message"
                     " FROM crm_sync_runs WHERE operation = 'resolve' ORDER BY id DESC LIMIT 1")
    return found[0] if found else None


def last_run_id(pg, dag_id: str) -> str:
    return rows(pg, "SELECT dag_run_id FROM crm_sync_runs WHERE dag_id = %s ORDER BY id DESC LIMIT 1", dag_id)[0][0]


def journal(pg, direction: str) -> list[tuple]:
    return rows(pg, "SELECT dag_id, dag_run_id, customer_id, before, after FROM crm_sync_changes"
                    " WHERE direction = %s ORDER BY id", direction)


def edit_locally(pg, sumit_id, **values) -> None:
    """An edit by another application (not journaled: not crmsync's session)."""
    with pg.connect() as conn:
        conn.execute(f"UPDATE sumit_customers SET {', '.join(f'{k} = %s' for k in values)}"
                     " WHERE sumit_customer_id = %s", [*values.values(), str(sumit_id)])


def make_conflict(run_dag, pg, sandbox, *, policy: str, dag_id: str = "crm_pull_customers") -> tuple[str, int]:
    """Alpha, pulled, then changed on both sides (local: email and city; CRM: email and phone),
    then pulled again with ``policy``: a real conflict. Returns (Alpha's CRM id, the conflict's id)."""
    [alpha, _] = [str(i) for i in sandbox.control.add_customers([ALPHA, BETA])]
    assert run_dag("crm_pull_customers") == "success"
    edit_locally(pg, alpha, **LOCAL_EDIT)
    sandbox.control.add_customers([{**ALPHA, **CRM_EDIT, "CustomerID": alpha}])
    assert run_dag(dag_id, {"conflict_policy": policy}) == "success"
    [(conflict_id, _, winner, resolution, _, _)] = conflicts(pg)
    assert (winner, resolution) == (policy.split("_")[0], None)
    return alpha, conflict_id


@pytest.mark.usefixtures("env")
def test_keeping_local_after_the_crm_won_writes_the_local_values_and_sends_them_to_sumit(pg, sandbox, run_dag, profile):
    alpha, conflict_id = make_conflict(run_dag, pg, sandbox, policy="crm_wins")
    assert local(pg, alpha) == CRM_SIDE
    customer_id = rows(pg, "SELECT id FROM sumit_customers WHERE sumit_customer_id = %s", alpha)[0][0]
    sent_before = len(push_requests(sandbox, profile))

    assert run_dag(RESOLVE, {"conflict_ids": [conflict_id], "keep": "local"}) == "success"
    run_id = last_run_id(pg, RESOLVE)
    assert local(pg, alpha) == LOCAL_SIDE
    assert in_crm(sandbox, alpha) == LOCAL_SIDE  # pushed: SUMIT holds the local side
    assert len(push_requests(sandbox, profile)) == sent_before + 1  # exactly the rewritten customer
    assert conflicts(pg) == [(conflict_id, customer_id, "crm", "local", run_id, True)]
    status, resolved, rewritten, unchanged, skipped, pushed, changed, message = resolve_row(pg)
    assert (status, resolved, rewritten, unchanged, skipped, pushed, changed) == ("success", 1, 1, 0, 0, 1, 2)
    assert message.startswith("Resolve completed. Resolved: 1, Rewritten: 1, Pushed: 1 (Failed: 0), Changed: 2")
    [entry] = journal(pg, "resolve")
    assert entry == (RESOLVE, run_id, customer_id,
                     {"email": "crm@alpha.example", "phone": "050-9999999", "city": "Haifa"},
                     {"email": "local@alpha.example", "phone": "050-1111111", "city": "Local City"})

    # Both sides now agree: the next sync finds no conflict and changes nothing.
    sent_before = len(push_requests(sandbox, profile))
    assert run_dag("crm_bidirectional_sync") == "success"
    assert local(pg, alpha) == LOCAL_SIDE and len(conflicts(pg)) == 1
    assert len(push_requests(sandbox, profile)) == sent_before


@pytest.mark.usefixtures("env")
def test_keeping_the_crm_after_local_won_writes_the_crm_values_and_sends_them_back_to_sumit(pg, sandbox, run_dag,
                                                                                         profile):
    # The bidirectional sync kept the local side and pushed it: SUMIT lost its own edit.
    alpha, conflict_id = make_conflict(run_dag, pg, sandbox, policy="local_wins", dag_id="crm_bidirectional_sync")
    assert local(pg, alpha) == LOCAL_SIDE and in_crm(sandbox, alpha) == LOCAL_SIDE

    assert run_dag(RESOLVE, {"conflict_ids": [conflict_id], "keep": "crm"}) == "success"
    assert local(pg, alpha) == CRM_SIDE
    assert in_crm(sandbox, alpha) == CRM_SIDE
    assert [c[3] for c in conflicts(pg)] == ["crm"]
    assert resolve_row(pg)[:7] == ("success", 1, 1, 0, 0, 1, 2)
    [entry] = journal(pg, "resolve")
    assert entry[4] == {"email": "crm@alpha.example", "phone": "050-9999999", "city": "Haifa"}


@pytest.mark.usefixtures("guide_env")
def test_keeping_the_winner_writes_nothing_and_resolves_the_conflict(pg, sandbox, run_dag):
    alpha, conflict_id = make_conflict(run_dag, pg, sandbox, policy="crm_wins")
    before, sent_before = data_snapshot(pg, sandbox), len(push_requests(sandbox, "guide"))

    assert run_dag(RESOLVE, {"conflict_ids": [conflict_id], "keep": "crm"}) == "success"
    after = data_snapshot(pg, sandbox)
    assert {k: v for k, v in after.items() if k != "crm_sync_conflicts"} == \
        {k: v for k, v in before.items() if k != "crm_sync_conflicts"}
    assert len(push_requests(sandbox, "guide")) == sent_before and journal(pg, "resolve") == []
    assert [c[3:] for c in conflicts(pg)] == [("crm", last_run_id(pg, RESOLVE), True)]
    status, *counts, message = resolve_row(pg)
    assert (status, *counts) == ("success", 1, 0, 1, 0, 0, 0)
    assert message.startswith("Resolve completed. Resolved: 1, Rewritten: 0, Pushed: 0 (Failed: 0), Changed: 0")


@pytest.mark.usefixtures("guide_env")
def test_a_row_edited_since_the_conflict_is_left_alone_and_named_and_a_dry_run_writes_nothing(pg, sandbox, run_dag,
                                                                                            capfd):
    alpha, conflict_id = make_conflict(run_dag, pg, sandbox, policy="crm_wins")

    # A dry run says what a real run would do, and writes nothing.
    snapshot, sent_before = data_snapshot(pg, sandbox), len(push_requests(sandbox, "guide"))
    capfd.readouterr()
    assert run_dag(RESOLVE, {"conflict_ids": [conflict_id], "keep": "local", "dry_run": True}) == "success"
    output = "".join(capfd.readouterr())
    assert "[dry run, nothing written] Resolve completed. Resolved: 1, Rewritten: 1, Pushed: 0 (Failed: 0)" in output
    assert "Dry run, nothing written: would rewrite 1 customer with the local values" in output
    assert data_snapshot(pg, sandbox) == snapshot and resolve_row(pg) is None
    assert journal(pg, "resolve") == [] and len(push_requests(sandbox, "guide")) == sent_before

    edit_locally(pg, alpha, city="Edited Since")
    edited = local(pg, alpha)
    assert run_dag(RESOLVE, {"conflict_ids": [conflict_id], "keep": "local"}) == "success"
    output = "".join(capfd.readouterr())
    assert local(pg, alpha) == edited and in_crm(sandbox, alpha) == CRM_SIDE
    assert [c[3] for c in conflicts(pg)] == [None]  # still open
    customer_id = conflicts(pg)[0][1]
    status, resolved, rewritten, unchanged, skipped, pushed, changed, message = resolve_row(pg)
    assert (status, resolved, rewritten, skipped, pushed, changed) == ("warning", 0, 0, 1, 0, 0)
    assert (f"resolve: 1 customer changed or deleted since their conflict, left alone (the conflicts stay open): "
            f"conflict {conflict_id} (customer {customer_id})") in message
    assert "Changed since the conflict (the row no longer holds the winner's values), left alone" in output
    assert journal(pg, "resolve") == [] and len(push_requests(sandbox, "guide")) == sent_before

    # Keeping the winner closes a stale conflict without writing anything.
    assert run_dag(RESOLVE, {"conflict_ids": [conflict_id], "keep": "crm"}) == "success"
    assert local(pg, alpha) == edited and [c[3] for c in conflicts(pg)] == ["crm"]


@pytest.mark.usefixtures("guide_env")
def test_unknown_and_resolved_conflicts_are_refused_when_nothing_is_open_and_named_otherwise(pg, sandbox, run_dag,
                                                                                            capfd):
    alpha, conflict_id = make_conflict(run_dag, pg, sandbox, policy="crm_wins")
    snapshot = data_snapshot(pg, sandbox)

    capfd.readouterr()
    assert run_dag(RESOLVE, {"conflict_ids": [999_999], "keep": "local"}) == "failed"
    status, *_, message = resolve_row(pg)
    assert status == "failed"
    assert "None of the conflicts 999999 can be resolved: no conflict has id 999999. Nothing was written." in message
    output = "".join(capfd.readouterr())  # the red run notifies, its required params notwithstanding
    assert "no conflict has id 999999" in output and "ParamValidationError" not in output
    assert data_snapshot(pg, sandbox) == snapshot and journal(pg, "resolve") == []

    # One open conflict among unknown ids: resolved, the others named; the run is a warning.
    assert run_dag(RESOLVE, {"conflict_ids": [conflict_id, 999_998], "keep": "local"}) == "success"
    assert local(pg, alpha) == LOCAL_SIDE
    status, resolved, rewritten, _, skipped, *_, message = resolve_row(pg)
    assert (status, resolved, rewritten, skipped) == ("warning", 1, 1, 1)
    assert "resolve: no conflict has id 999998" in message
    resolver = last_run_id(pg, RESOLVE)

    # Resolved already: refused, nothing written.
    snapshot, journaled = data_snapshot(pg, sandbox), journal(pg, "resolve")
    assert run_dag(RESOLVE, {"conflict_ids": [conflict_id], "keep": "crm"}) == "failed"
    assert f"already resolved: {conflict_id} (local, by {resolver})" in resolve_row(pg)[7]
    assert data_snapshot(pg, sandbox) == snapshot and journal(pg, "resolve") == journaled


@pytest.mark.usefixtures("guide_env")
def test_a_customers_newest_conflict_settles_its_older_ones_and_an_older_one_alone_is_refused(pg, sandbox, run_dag):
    alpha, older = make_conflict(run_dag, pg, sandbox, policy="crm_wins")
    # Both sides change Alpha again: a second conflict for the same customer.
    edit_locally(pg, alpha, email="local-2@alpha.example")
    sandbox.control.add_customers([{**ALPHA, "Email": "crm-2@alpha.example", "CustomerID": alpha}])
    assert run_dag("crm_pull_customers", {"conflict_policy": "crm_wins"}) == "success"
    [(_, customer_id, *_), (newer, *_)] = conflicts(pg)
    assert local(pg, alpha)[1] == "crm-2@alpha.example"

    snapshot = data_snapshot(pg, sandbox)
    assert run_dag(RESOLVE, {"conflict_ids": [older], "keep": "local"}) == "failed"
    assert f"superseded by a newer open conflict of the same customer, which decides: {older} (resolve {newer})" \
        in resolve_row(pg)[7]
    assert data_snapshot(pg, sandbox) == snapshot

    assert run_dag(RESOLVE, {"conflict_ids": [newer], "keep": "local"}) == "success"
    run_id = last_run_id(pg, RESOLVE)
    assert local(pg, alpha)[1] == "local-2@alpha.example"  # the newer conflict's local side
    assert in_crm(sandbox, alpha)[1] == "local-2@alpha.example"
    assert conflicts(pg) == [(older, customer_id, "crm", "local", run_id, True),
                             (newer, customer_id, "crm", "local", run_id, True)]
    status, resolved, rewritten, *_, message = resolve_row(pg)
    assert (status, resolved, rewritten) == ("success", 2, 1)
    assert f"also resolved 1 conflict older than the one decided for the same customer (superseded): ids {older}" \
        in message


@pytest.mark.usefixtures("guide_env")
def test_the_rewrite_checks_in_sql_that_no_edit_committed_while_it_waited(pg):
    """An edit committed while the rewrite waits for the row keeps its value: the UPDATE checks
    the row it writes against the winner's values again (no Airflow needed to race it)."""
    import threading
    import time

    from crmsync.core import conflict_plan
    from crmsync.db import conflict_store, sql
    from crmsync.db.store import CustomerStore, RunRef

    with pg.connect() as conn:
        conn.execute(sql.load("schema"))
        [customer_id] = conn.execute("INSERT INTO sumit_customers (sumit_customer_id, name, email)"
                                     " VALUES ('77', 'Zeta', 'crm@example.com') RETURNING id").fetchone()
    planned = conflict_plan.Decision(1, conflict_plan.REWRITE, customer_id, "77",
                                     expected={"name": "Zeta", "email": "crm@example.com"},
                                     chosen={"email": "local@example.com"})
    editor = pg.connect()
    editor.execute("UPDATE sumit_customers SET email = 'edited@example.com' WHERE id = %s", (customer_id,))
    written: list = []
    with CustomerStore(pg.connect(), RunRef(RESOLVE, "manual__resolve")) as resolver:
        pid = resolver.conn.info.backend_pid
        resolver.journal_as("resolve")
        worker = threading.Thread(target=lambda: written.append(conflict_store.rewrite(resolver, [planned])))
        worker.start()
        with pg.connect(autocommit=True) as watcher:  # the rewrite waits for the editor's row lock
            deadline = time.monotonic() + 10
            while not watcher.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                                      (pid,)).fetchone()[0]:
                assert time.monotonic() < deadline, "the rewrite never waited for the row lock"
                time.sleep(0.02)
        editor.commit()
        editor.close()
        worker.join(10)
        resolver.commit()
    assert written == [set()]  # no customer written
    assert rows(pg, "SELECT email FROM sumit_customers")[0][0] == "edited@example.com"
    assert journal(pg, "resolve") == []


@pytest.mark.usefixtures("guide_env")
def test_the_schema_upgrades_an_older_database_and_stays_rerunnable(pg):
    """A database made before conflicts could be resolved (journal directions and run operations
    without 'resolve', no resolution columns) is upgraded; running the schema again changes nothing."""
    from crmsync.db import sql

    with pg.connect() as conn:
        conn.execute(sql.load("schema"))
        conn.execute("ALTER TABLE crm_sync_conflicts DROP COLUMN resolution CASCADE, DROP COLUMN resolved_at,"
                     " DROP COLUMN resolved_by")  # with any view reading them: the schema makes it again
        for table, column, values in (("crm_sync_changes", "direction", "'pull', 'push', 'revert'"),
                                      ("crm_sync_created", "direction", "'pull', 'push', 'revert'"),
                                      ("crm_sync_runs", "operation", "'pull', 'push', 'bidirectional', 'revert'")):
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_check")
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_check CHECK ({column} IN ({values}))")
    for _ in range(2):
        with pg.connect() as conn:
            conn.execute(sql.load("schema"))
    checks = dict(rows(pg, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conname IN"
                           " ('crm_sync_changes_direction_check', 'crm_sync_created_direction_check',"
                           "  'crm_sync_runs_operation_check', 'crm_sync_conflicts_resolution_check')"))
    assert len(checks) == 4 and all("resolve" in d or "local" in d for d in checks.values()), checks
    assert all("'resolve'" in checks[name] for name in ("crm_sync_changes_direction_check",
                                                         "crm_sync_created_direction_check",
                                                         "crm_sync_runs_operation_check"))
    columns = {r[0] for r in rows(pg, "SELECT column_name FROM information_schema.columns"
                                      " WHERE table_name = 'crm_sync_conflicts'")}
    assert {"resolution", "resolved_at", "resolved_by"} <= columns
    with pg.connect() as conn, pytest.raises(Exception, match="crm_sync_conflicts_resolution_check"):
        conn.execute("INSERT INTO crm_sync_conflicts (dag_id, dag_run_id, customer_id, sumit_customer_id, winner,"
                     " policy, local_values, crm_values, resolution) VALUES ('d', 'r', 1, '1', 'crm', 'crm_wins',"
                     " '{}', '{}', 'both')")


@pytest.mark.usefixtures("guide_env")
def test_a_resolve_run_can_be_reverted_like_a_pull(pg, sandbox, run_dag):
    alpha, conflict_id = make_conflict(run_dag, pg, sandbox, policy="crm_wins")
    assert run_dag(RESOLVE, {"conflict_ids": [conflict_id], "keep": "local"}) == "success"
    assert local(pg, alpha) == LOCAL_SIDE
    resolve_run = last_run_id(pg, RESOLVE)

    assert run_dag("crm_revert_run", {"dag_run_id": resolve_run}) == "success"
    assert local(pg, alpha) == CRM_SIDE  # the row holds again what it held before the resolve
    [(before, after)] = [(b, a) for d, r, _, b, a in journal(pg, "revert")]
    assert after == {"email": "crm@alpha.example", "phone": "050-9999999", "city": "Haifa"}
