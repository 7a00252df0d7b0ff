"""A re-pull maps only the records SUMIT changed: a record whose hash (crmsync.core.fingerprint.
record_hashes) is the one the table holds for its CRM id is noted as seen and counted unchanged,
never decoded. Real PostgreSQL and the sandbox, the pull's engine below the DAGs."""

from __future__ import annotations

import logging

import psycopg
import pytest

from crmsync.core.field_rules import parse as parse_rules
from crmsync.db.store import CustomerStore, RunRef
from crmsync.flows import pull
from crmsync.hooks.sumit import SumitHook

pytestmark = pytest.mark.usefixtures("guide_env")

RECORDS = [{"Name": f"Customer {i}", "Email": f"c{i}@example.com", "Phone": f"050-000{i:04d}"}
           for i in range(120)]  # 3 pages of 50


class CountingHook(SumitHook):
    """The sandbox's hook, counting the records its profile decodes."""

    decoded = 0

    def _row_decoder(self):
        decode = super()._row_decoder()

        def counted(raw):
            CountingHook.decoded += 1
            return decode(raw)
        return counted


def run(pg, run_id: str, **kwargs) -> tuple[object, int]:
    """One pull: its counts and how many records it decoded."""
    hook = CountingHook()
    CountingHook.decoded = 0
    try:
        with CustomerStore(psycopg.connect(pg.dsn), RunRef("test", run_id)) as store:
            store.ensure_schema()
            counts = pull.run_pull(hook, store, log=logging.getLogger("test"), **kwargs).counts
    finally:
        hook.close()
    return counts, CountingHook.decoded


def table(pg) -> list[tuple]:
    with psycopg.connect(pg.dsn) as conn:
        return conn.execute("SELECT id, sumit_customer_id, name, email, crm_fingerprint, updated_at, "
                            "crm_record_hash IS NOT NULL FROM sumit_customers ORDER BY id").fetchall()


def execute(pg, statement: str, *params) -> None:
    with psycopg.connect(pg.dsn) as conn:
        conn.execute(statement, params)


def test_a_repull_maps_only_what_changed_and_keeps_every_row_right(pg, sandbox):
    ids = sandbox.control.add_customers(RECORDS)
    first, decoded = run(pg, "first")
    assert (first.created, decoded) == (120, 120)
    after_first = table(pg)
    assert all(row[-1] for row in after_first), "a first pull stores every record's hash"

    same, decoded = run(pg, "same")
    assert (same.fetched, same.unchanged, same.created, same.updated, decoded) == (120, 120, 0, 0, 0)
    assert table(pg) == after_first, "a re-pull of the same records wrote nothing"

    # Two records change in SUMIT, one leaves it: only the two are decoded, and the one gone is
    # still flagged (the unchanged ones were noted as seen without being decoded).
    sandbox.control.add_customers([{**RECORDS[3], "CustomerID": ids[3], "Email": "new3@example.com"},
                                   {**RECORDS[77], "CustomerID": ids[77], "Name": "Renamed 77"}])
    sandbox.control.delete([ids[100]])
    changed, decoded = run(pg, "changed")
    assert (changed.fetched, changed.updated, changed.unchanged, changed.vanished, decoded) == (119, 2, 117, 1, 2)
    now = {row[1]: row for row in table(pg)}
    assert now[str(ids[3])][3] == "new3@example.com" and now[str(ids[77])][2] == "Renamed 77"
    assert now[str(ids[3])][6], "the changed record's new hash is stored with its new fingerprint"

    again, decoded = run(pg, "again")
    assert (again.updated, again.vanished, decoded) == (0, 0, 0)


def test_a_table_without_hashes_is_mapped_once_then_skipped_without_a_change_to_any_row(pg, sandbox):
    # As after the upgrade to 1.2.0: rows pulled before record hashes existed.
    sandbox.control.add_customers(RECORDS)
    run(pg, "first")
    execute(pg, "UPDATE sumit_customers SET crm_record_hash = NULL")
    before = [row[:-1] for row in table(pg)]

    upgraded, decoded = run(pg, "upgraded")
    assert (upgraded.unchanged, decoded) == (120, 120)
    assert [row[:-1] for row in table(pg)] == before, "recording the hashes changed no customer"
    assert all(row[-1] for row in table(pg))
    with psycopg.connect(pg.dsn) as conn:
        journaled = conn.execute("SELECT count(*) FROM crm_sync_changes WHERE dag_run_id = 'upgraded'").fetchone()[0]
    assert journaled == 0, "recording the hashes is not a change of any customer"

    _, decoded = run(pg, "next")
    assert decoded == 0


def test_a_row_whose_crm_fingerprint_changes_otherwise_loses_its_hash(pg, sandbox):
    # A push, a revert or a hand edit of the CRM fingerprints: the stored hash no longer vouches
    # for them, so the next pull maps that record again (and corrects the fingerprint).
    ids = sandbox.control.add_customers(RECORDS[:5])
    run(pg, "first")
    execute(pg, "UPDATE sumit_customers SET crm_fingerprint = 'stale' WHERE sumit_customer_id = %s", str(ids[2]))
    hashed = {row[1]: row[-1] for row in table(pg)}
    assert hashed[str(ids[2])] is False and sum(hashed.values()) == 4

    _, decoded = run(pg, "next")
    assert decoded == 1
    fingerprints = {row[1]: row[4] for row in table(pg)}
    assert fingerprints[str(ids[2])] != "stale"


def test_other_field_rules_or_a_full_resync_map_every_record_again(pg, sandbox):
    sandbox.control.add_customers(RECORDS[:60])
    run(pg, "first")
    _, decoded = run(pg, "rules", rules=parse_rules('{"fields": {"phone": "to_crm"}}', source="test"))
    assert decoded == 60, "records hashed under other rules are mapped again"
    _, decoded = run(pg, "resync", full_resync=True)
    assert decoded == 60
    _, decoded = run(pg, "plain")
    assert decoded == 0


def test_a_held_repull_applies_from_its_listing_the_changed_records_and_the_unchanged_seen(pg, sandbox):
    # The mass-change guard holds a re-pull that changes too many; its listing keeps the changed
    # records (mapped) and only the ids of the unchanged ones. Applied, it writes the same as a
    # pull that was not held: the changes, nothing for the rest, and the vanished one flagged.
    from crmsync.core.guard import GuardLimits

    ids = sandbox.control.add_customers(RECORDS)
    run(pg, "first")
    sandbox.control.edit([{"CustomerID": ids[i], "City": "Eilat"} for i in range(0, 120, 4)])  # 30 changed
    sandbox.control.delete([ids[1]])
    limits = GuardLimits(max_change_ratio=0.1, min_mass_change=10)
    hook = CountingHook()
    CountingHook.decoded = 0
    try:
        with CustomerStore(psycopg.connect(pg.dsn), RunRef("test", "held")) as store:
            result = pull.run_pull(hook, store, limits=limits, log=logging.getLogger("test"))
    finally:
        hook.close()
    assert result.held and CountingHook.decoded == 30
    with psycopg.connect(pg.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM sumit_customers WHERE city = 'Eilat'").fetchone()[0] == 0
        listed = conn.execute("SELECT sum(jsonb_array_length(unchanged)), sum(fetched) FROM crm_sync_listing "
                              "WHERE dag_run_id = 'held'").fetchone()
    assert listed == (89, 119)  # 119 listed: 30 changed (in rows), 89 only as ids

    with CustomerStore(psycopg.connect(pg.dsn), RunRef("test", "held")) as store:
        applied = pull.apply_held_pull(store, log=logging.getLogger("test"))
    assert (applied.counts.updated, applied.counts.unchanged, applied.counts.vanished) == (30, 89, 1)
    with psycopg.connect(pg.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM sumit_customers WHERE city = 'Eilat'").fetchone()[0] == 30
        flagged = conn.execute("SELECT sumit_customer_id FROM sumit_customers WHERE metadata ? 'crm_missing_since'"
                               ).fetchall()
    assert flagged == [(str(ids[1]),)]
    _, decoded = run(pg, "after")
    assert decoded == 0, "the applied plan stored the changed records' hashes"
