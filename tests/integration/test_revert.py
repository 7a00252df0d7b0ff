"""crm_revert_run through Airflow, on a real PostgreSQL and the SUMIT sandbox: a pull's changes
undone from the change journal (the customers it flagged vanished unflagged), customers edited
since left alone and named, a second revert a no-op, a revert undone in turn, a dry run and
refusals that write nothing, the restored customers pushed on request, and a concurrent edit
that the restore's own SQL check keeps."""

from __future__ import annotations

import pytest

from conftest import data_snapshot, push_requests

REVERT = "crm_revert_run"

ALPHA = {"Name": "Alpha Ltd", "Email": "alpha@example.com", "Phone": "050-1111111", "City": "Haifa", "Segment": "VIP"}
BETA = {"Name": "Beta Ltd", "Email": "beta@example.com", "Phone": "050-2222222", "City": "Eilat", "Segment": "VIP"}
GAMMA = {"Name": "Gamma Ltd", "Email": "gamma@example.com", "Phone": "050-3333333", "City": "Akko"}
DELTA = {"Name": "Delta Ltd", "Email": "delta@example.com", "City": "Tiberias"}


@pytest.fixture
def journal(pg):
    """No journal rows left by earlier tests (conftest drops the other crmsync tables only)."""
    with pg.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS crm_sync_changes, crm_sync_created CASCADE")


def rows(pg, query, *args):
    with pg.connect() as conn:
        return conn.execute(query, args).fetchall()


def values(pg) -> dict[str, tuple]:
    """Every customer's data by CRM id: what a revert may change, and its link."""
    return {r[0]: r[1:] for r in rows(pg, "SELECT sumit_customer_id, id, name, email, phone, city,"
                                          " metadata - 'last_synced_at' FROM sumit_customers ORDER BY id")}


def pull(run_dag, pg) -> str:
    """Run crm_pull_customers; returns its dag_run_id, as crm_sync_runs has it."""
    assert run_dag("crm_pull_customers") == "success"
    return last_run_id(pg, "crm_pull_customers")


def last_run_id(pg, dag_id: str) -> str:
    return rows(pg, "SELECT dag_run_id FROM crm_sync_runs WHERE dag_id = %s ORDER BY id DESC LIMIT 1", dag_id)[0][0]


def revert_row(pg):
    """The last revert run's row: status, restored, already restored, changed since, changed, message."""
    found = rows(pg, "SELECT status, updated, unchanged, skipped, changed, message FROM crm_sync_runs"
                     " WHERE operation = 'revert' ORDER BY id DESC LIMIT 1")
    return found[0] if found else None


def journal_rows(pg, direction: str | None = None) -> list[tuple]:
    return rows(pg, "SELECT dag_id, dag_run_id, direction, customer_id, before, after FROM crm_sync_changes"
                    " WHERE %s::text IS NULL OR direction = %s ORDER BY id", direction, direction)


def modify_in_crm(sandbox, ids, changes: dict[int, dict]) -> None:
    """Replace CRM customers: ``changes`` by position in ``ids``, each the new full record."""
    sandbox.control.add_customers([{**record, "CustomerID": ids[i]} for i, record in changes.items()])


@pytest.mark.usefixtures("guide_env", "journal")
def test_revert_restores_a_pull_unflags_the_vanished_leaves_later_edits_alone_and_is_idempotent(pg, sandbox, run_dag,
                                                                                                  capfd):
    ids = [str(i) for i in sandbox.control.add_customers([ALPHA, BETA, GAMMA, DELTA])]
    pull(run_dag, pg)
    before_bad_pull = values(pg)

    # The CRM changes: a new email and a new custom field, a blanked phone and a changed custom
    # field, a new city; the listing loses Delta (flagged vanished); one customer is new.
    modify_in_crm(sandbox, ids, {0: {**ALPHA, "Email": "alpha-new@example.com", "Tier": "1"},
                                 1: {**BETA, "Phone": "", "Segment": "Gold"},
                                 2: {**GAMMA, "City": "Nazareth"}})
    sandbox.control.delete([ids[3]])
    [epsilon] = sandbox.control.add_customers([{"Name": "Epsilon Ltd"}])
    bad_pull = pull(run_dag, pg)
    pulled = values(pg)
    assert pulled[ids[0]][2] == "alpha-new@example.com" and pulled[ids[0]][5]["Tier"] == "1"
    assert pulled[ids[1]][3] is None and pulled[ids[1]][5]["Segment"] == "Gold"
    assert "crm_missing_since" in pulled[ids[3]][5]
    entries = {r[3]: r for r in journal_rows(pg, "pull") if r[1] == bad_pull}
    assert set(entries) == {pulled[i][0] for i in ids}  # the journal the revert reads
    assert entries[pulled[ids[3]][0]][4] == {"metadata": {"crm_missing_since": None}}

    # Afterwards, someone edits Gamma locally (not journaled: not crmsync's session).
    gamma_id = pulled[ids[2]][0]
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET city = 'Local edit' WHERE id = %s", (gamma_id,))
    edited = values(pg)
    snapshot, journaled = data_snapshot(pg, sandbox), journal_rows(pg)

    # A dry run reports what it would do and writes nothing.
    capfd.readouterr()
    assert run_dag(REVERT, {"dag_run_id": bad_pull, "dry_run": True}) == "success"
    output = "".join(capfd.readouterr())
    assert "[dry run, nothing written] Revert completed. Restored: 3, Changed: 3" in output
    assert "would restore 3 customers" in output
    assert data_snapshot(pg, sandbox) == snapshot and journal_rows(pg) == journaled and revert_row(pg) is None

    # The revert: Alpha and Beta get their values back, Delta is no longer flagged vanished,
    # Gamma (edited since) is left alone and named, Epsilon (created by the run) is kept, and
    # no CRM link changes.
    assert run_dag(REVERT, {"dag_run_id": bad_pull}) == "success"
    output = "".join(capfd.readouterr())
    after = values(pg)
    assert after[ids[0]] == before_bad_pull[ids[0]]  # old email back, the new custom field "Tier" gone
    assert "Tier" not in after[ids[0]][5]
    assert after[ids[1]] == before_bad_pull[ids[1]]  # the blanked phone and the custom field restored
    assert after[ids[2]] == edited[ids[2]] and after[ids[2]][4] == "Local edit"
    assert after[ids[3]] == before_bad_pull[ids[3]] and "crm_missing_since" not in after[ids[3]][5]
    assert after[str(epsilon)] == edited[str(epsilon)]
    assert set(after) == set(edited)
    status, restored, already, changed_since, changed, message = revert_row(pg)
    assert (status, restored, already, changed_since, changed) == ("warning", 3, 0, 1, 3)
    assert "Revert completed. Restored: 3, Changed: 3" in message
    assert f"revert: 1 customer changed since run {bad_pull}, left alone: ids {gamma_id}" in message
    assert "kept 1 customer the run created or linked to the CRM (crmsync never deletes or unlinks): " \
           f"ids {pulled[str(epsilon)][0]}" in message
    assert f"Changed since the run (a local edit, or a later pull or revert), left alone: 1: ids {gamma_id}" in output
    reverts = journal_rows(pg, "revert")
    revert_run = last_run_id(pg, REVERT)
    restored = (ids[0], ids[1], ids[3])
    assert {(r[0], r[1], r[3]) for r in reverts} == {(REVERT, revert_run, pulled[i][0]) for i in restored}
    alpha_entry = next(r for r in reverts if r[3] == pulled[ids[0]][0])
    assert alpha_entry[4] == {"email": "alpha-new@example.com", "metadata": {"Tier": "1"}}
    assert alpha_entry[5] == {"email": "alpha@example.com", "metadata": {"Tier": None}}

    # Again: every customer is already restored, nothing is written.
    snapshot, journaled = data_snapshot(pg, sandbox), journal_rows(pg)
    assert run_dag(REVERT, {"dag_run_id": bad_pull}) == "success"
    assert data_snapshot(pg, sandbox) == snapshot and journal_rows(pg) == journaled
    assert revert_row(pg)[:5] == ("warning", 0, 3, 1, 0)
    assert "Restored: 0, Changed: 0" in revert_row(pg)[5]

    # A revert is undone like any run: the pulled values come back.
    assert run_dag(REVERT, {"dag_run_id": revert_run}) == "success"
    again = values(pg)
    assert [again[i] for i in restored] == [pulled[i] for i in restored]
    assert again[ids[2]] == edited[ids[2]]
    assert revert_row(pg)[:5] == ("success", 3, 0, 0, 3)

    # The bad pull's values are back, but later runs (the two reverts) touched those customers:
    # reverting the bad pull again leaves them alone.
    assert run_dag(REVERT, {"dag_run_id": bad_pull}) == "success"
    assert values(pg) == again
    assert revert_row(pg)[:5] == ("warning", 0, 0, 4, 0)


@pytest.mark.usefixtures("guide_env", "journal")
def test_an_unknown_run_an_ambiguous_one_and_one_that_changed_nothing_are_refused_writing_nothing(pg, sandbox, run_dag,
                                                                                                capfd):
    sandbox.control.add_customers([ALPHA, BETA])
    first = pull(run_dag, pg)
    quiet = pull(run_dag, pg)  # nothing changed in the CRM: no journal rows
    snapshot, journaled = data_snapshot(pg, sandbox), journal_rows(pg)

    capfd.readouterr()
    assert run_dag(REVERT, {"dag_run_id": "manual__no-such-run"}) == "failed"
    status, *_, message = revert_row(pg)
    assert status == "failed"
    assert "No run has dag_run_id 'manual__no-such-run'" in message and "Nothing was written" in message
    output = "".join(capfd.readouterr())  # the red run notifies, its required param notwithstanding
    assert "No run has dag_run_id 'manual__no-such-run'" in output
    assert "ParamValidationError" not in output and "Callback failed" not in output

    assert run_dag(REVERT, {"dag_run_id": quiet}) == "failed"
    message = revert_row(pg)[5]
    assert f"Run {quiet!r} of crm_pull_customers changed nothing a revert can restore: its change journal is empty" \
        in message

    # The first pull only created customers: kept, so there is nothing to restore either.
    assert run_dag(REVERT, {"dag_run_id": first}) == "failed"
    assert "only created customers (2)" in revert_row(pg)[5]

    with pg.connect() as conn:  # another DAG's run with the same id
        conn.execute("INSERT INTO crm_sync_runs (dag_id, dag_run_id, operation, status) "
                     "VALUES ('crm_bidirectional_sync', %s, 'bidirectional', 'success')", (first,))
    assert run_dag(REVERT, {"dag_run_id": first}) == "failed"
    assert "names runs of several DAGs: crm_bidirectional_sync, crm_pull_customers" in revert_row(pg)[5]

    assert data_snapshot(pg, sandbox) == snapshot and journal_rows(pg) == journaled


@pytest.mark.usefixtures("guide_env", "journal")
def test_push_reverted_sends_exactly_the_restored_customers(pg, sandbox, run_dag):
    ids = [str(i) for i in sandbox.control.add_customers([ALPHA, BETA, GAMMA])]
    pull(run_dag, pg)
    modify_in_crm(sandbox, ids, {0: {**ALPHA, "Email": "alpha-new@example.com"},
                                 1: {**BETA, "City": "Ramla"},
                                 2: {**GAMMA, "Segment": "Gold"}})  # a custom field only: never pushed
    bad_pull = pull(run_dag, pg)
    beta_id = values(pg)[ids[1]][0]
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET city = 'Lod' WHERE id = %s", (beta_id,))
    sent_before = len(push_requests(sandbox, "guide"))

    assert run_dag(REVERT, {"dag_run_id": bad_pull, "push_reverted": True}) == "success"
    local = values(pg)
    assert local[ids[0]][2] == "alpha@example.com" and "Segment" not in local[ids[2]][5]
    assert local[ids[1]][4] == "Lod"  # edited since: left alone, and not pushed
    pushes = push_requests(sandbox, "guide")[sent_before:]
    assert len(pushes) == 1 and all(p["status"] == 200 for p in pushes)
    crm = {str(c["CustomerID"]): c for c in sandbox.control.customers()}
    assert crm[ids[0]]["Email"] == "alpha@example.com"  # SUMIT has the restored value
    assert crm[ids[1]]["City"] == "Ramla" and crm[ids[2]].get("Segment") == "Gold"
    status, restored, _, skipped, changed, message = revert_row(pg)
    assert (status, restored, skipped) == ("warning", 2, 1)
    assert rows(pg, "SELECT customer_id FROM crm_sync_changes WHERE direction = 'push' AND dag_run_id = %s",
                last_run_id(pg, REVERT)) == [(local[ids[0]][0],)]


@pytest.mark.usefixtures("guide_env", "journal")
def test_the_restore_checks_in_sql_that_no_edit_committed_while_it_waited(pg):
    """An edit committed while the restore statement waits for the row keeps its value: the
    UPDATE checks the row it writes against ``after`` again (no Airflow needed to race it)."""
    import threading
    import time

    from crmsync.db import revert_store, sql
    from crmsync.db.store import CustomerStore, RunRef

    with pg.connect() as conn:
        conn.execute(sql.load("schema"))
        [customer_id] = conn.execute("INSERT INTO sumit_customers (sumit_customer_id, name, email)"
                                     " VALUES ('77', 'Zeta', 'old@example.com') RETURNING id").fetchone()
    with CustomerStore(pg.connect(), RunRef("crm_pull_customers", "manual__bad")) as puller:
        puller.journal_as("pull")
        puller.fetch("UPDATE sumit_customers SET email = 'bad@example.com'", raw=True)
        puller.commit()

    editor = pg.connect()
    editor.execute("UPDATE sumit_customers SET email = 'edited@example.com' WHERE id = %s", (customer_id,))
    outcome: dict = {}
    with CustomerStore(pg.connect(), RunRef(REVERT, "manual__revert")) as reverter:
        pid = reverter.conn.info.backend_pid
        reverter.journal_as("revert")
        worker = threading.Thread(target=lambda: outcome.update(
            revert_store.restore(reverter, dag_id="crm_pull_customers", dag_run_id="manual__bad").outcomes))
        worker.start()
        with pg.connect(autocommit=True) as watcher:  # the restore waits for the editor's row lock
            deadline = time.monotonic() + 10
            while not watcher.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                                      (pid,)).fetchone()[0]:
                assert time.monotonic() < deadline, "the restore never waited for the row lock"
                time.sleep(0.02)
        editor.commit()
        editor.close()
        worker.join(10)
        reverter.commit()
    assert outcome == {customer_id: "changed_since"}
    assert rows(pg, "SELECT email FROM sumit_customers")[0][0] == "edited@example.com"
    assert journal_rows(pg, "revert") == []
