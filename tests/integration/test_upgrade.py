"""Upgrading from crmsync 1.0.0: its tables and data (tests/data/crmsync-1.0.0: the DDL that
release ran and the rows it left), then this tree's DAGs through Airflow. Nothing is lost, the
recorded schema version moves (crm_sync_schema), a second upgrade changes nothing, the first
sync pushes exactly what 1.0.0 had pending, and tables a newer crmsync upgraded are refused."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from conftest import CONTENT_COLUMNS, push_requests, rows

from crmsync.core.errors import ConfigurationError
from crmsync.db.schema_version import RELEASES, SCHEMA_VERSION
from crmsync.db.store import CustomerStore, RunRef

pytestmark = pytest.mark.usefixtures("guide_env")

RELEASE_1_0_0 = Path(__file__).resolve().parents[1] / "data" / "crmsync-1.0.0"
# SUMIT's side as 1.0.0 last saw it: customers 1-3 as pulled (custom fields too), 4 as pushed
# (its e-mail and phone edited locally since); 5 and 6 were never created there.
CRM = [
    {"CustomerID": 40123, "Name": "Orbit Logistics Ltd", "Email": "accounts@orbit-logistics.co.il",
     "Phone": "03-5551234", "CompanyName": "Orbit Logistics Ltd", "TaxID": "514123456", "Address": "12 HaBarzel St",
     "City": "Tel Aviv", "Country": "IL", "ZipCode": "6971012", "Segment": "VIP"},
    {"CustomerID": 40124, "Name": "דנה כהן", "Email": "dana.cohen@example.co.il", "Phone": "052-7654321",
     "CompanyName": 'כהן ייעוץ בע"מ', "TaxID": "038475612", "Address": "רחוב הרצל 15", "City": "ירושלים",
     "Country": "IL", "ZipCode": "9414215", "מקור": "אתר"},
    {"CustomerID": 40150, "Name": "מאפיית השחר", "Email": "info@hashachar-bakery.co.il", "Phone": "04-8770000",
     "CompanyName": 'מאפיית השחר בע"מ', "TaxID": "515987654", "Address": "שדרות הנשיא 101", "City": "חיפה",
     "Country": "IL", "ZipCode": "3460212", "Segment": "Regular"},
    {"CustomerID": 40211, "Name": "Yossi Mizrahi", "Email": "yossi.m@example.com", "Phone": "054-1112233",
     "Address": "7 Rothschild Blvd", "City": "Tel Aviv", "Country": "IL"},
]
PENDING = {"Yossi Mizrahi", "Avi Ben-David", "Galil Dental Clinic"}  # 1.0.0's rule: ids 4, 5, 6


def load_release_1_0_0(pg) -> None:
    with pg.connect(autocommit=True) as conn:
        conn.execute((RELEASE_1_0_0 / "schema.sql").read_text(encoding="utf-8"))
        conn.execute((RELEASE_1_0_0 / "data.sql").read_text(encoding="utf-8"))
        # 1.0.0 logged a row per failure: customer 5 refused again the next night
        conn.execute("INSERT INTO crm_sync_errors (dag_id, dag_run_id, phase, customer_id, error, created_at) "
                     "VALUES ('crm_bidirectional_sync', 'scheduled__2026-12-02T01:00:00+00:00', 'push', 5, "
                     "'SUMIT rejected the request: Invalid email address', '2026-12-02 01:00:09+00')")


def local_content(pg) -> dict:
    columns = ", ".join(CONTENT_COLUMNS)
    return {r[0]: r[1:] for r in rows(pg, f"SELECT id, {columns}, metadata - 'last_synced_at' FROM sumit_customers")}


def history(pg) -> tuple:
    return (rows(pg, "SELECT id, dag_id, dag_run_id, status, message FROM crm_sync_runs WHERE id <= 2 ORDER BY id"),
            rows(pg, "SELECT id, customer_id, winner, local_values, crm_values FROM crm_sync_conflicts ORDER BY id"),
            rows(pg, "SELECT id, customer_id, error FROM crm_sync_errors ORDER BY id"))


def recorded_versions(pg) -> list[tuple]:
    return rows(pg, "SELECT version, crmsync, recorded_at FROM crm_sync_schema ORDER BY version")


def test_the_first_sync_after_the_upgrade_pushes_what_1_0_0_had_pending_and_loses_nothing(pg, sandbox, run_dag):
    load_release_1_0_0(pg)
    sandbox.control.reset(CRM)
    before, old_history = local_content(pg), history(pg)

    assert run_dag("crm_bidirectional_sync") == "success"

    import crmsync
    versions = recorded_versions(pg)
    passed = [(v, RELEASES[v]) for v in range(1, SCHEMA_VERSION)]  # 1.0.0's, and the releases in between
    assert [(v, release) for v, release, _ in versions] == [*passed, (SCHEMA_VERSION, crmsync.__version__)]
    pushed = {(r["body"].get("Customer") or r["body"].get("Details"))["Name"] for r in push_requests(sandbox, "guide")}
    assert pushed == PENDING, "the first sync pushed more, or less, than 1.0.0 had pending"
    assert local_content(pg) == before, "the upgrade or the sync changed a customer's content"
    assert history(pg) == old_history, "1.0.0's runs, conflicts or errors were lost"
    assert rows(pg, "SELECT count(*), count(DISTINCT sumit_customer_id) FROM sumit_customers")[0] == (6, 6)
    # 1.0.0's two error rows of customer 5 became one retry-queue record, counting both failures;
    # the push closed it (the sandbox took the e-mail this time)
    assert rows(pg, "SELECT id, status FROM crm_sync_errors WHERE customer_id = 5 ORDER BY id") == \
        [(1, "resolved"), (2, "resolved")]

    # a second upgrade (any later run) changes nothing: the same versions, the same customers
    synced = rows(pg, "SELECT id, synced_fingerprint, crm_fingerprint, updated_at FROM sumit_customers ORDER BY id")
    sandbox.control.clear_triggers()
    assert run_dag("crm_pull_customers") == "success"
    assert recorded_versions(pg) == versions
    assert rows(pg, "SELECT id, synced_fingerprint, crm_fingerprint, updated_at FROM sumit_customers ORDER BY id") \
        == synced


def test_a_second_failure_logged_by_1_0_0_becomes_one_pending_retry(pg):
    """Upgrading alone (no sync): the retry queue holds one row per record, its attempts the failures."""
    load_release_1_0_0(pg)
    with CustomerStore(psycopg.connect(pg.dsn), RunRef("crm_pull_customers", "manual__upgrade")) as store:
        store.ensure_schema()
        store.ensure_schema()  # twice: the second changes nothing
    assert rows(pg, "SELECT id, status, attempts FROM crm_sync_errors ORDER BY id") == \
        [(1, "resolved", 1), (2, "pending", 2)]
    assert [v for v, _, _ in recorded_versions(pg)] == list(range(1, SCHEMA_VERSION + 1))
    # 1.2.0's local_changed is filled for 1.0.0's rows: true exactly where the fingerprints differ
    flags = rows(pg, "SELECT local_changed, synced_fingerprint IS DISTINCT FROM crmsync_local_fingerprint(c) "
                     "FROM sumit_customers AS c")
    assert flags and all(flag is changed for flag, changed in flags) and any(changed for _, changed in flags)


def test_tables_a_newer_crmsync_upgraded_are_refused_in_words(pg, run_dag):
    load_release_1_0_0(pg)
    with CustomerStore(psycopg.connect(pg.dsn), RunRef("crm_pull_customers", "manual__upgrade")) as store:
        store.ensure_schema()
    with pg.connect() as conn:
        conn.execute("INSERT INTO crm_sync_schema (version, crmsync) VALUES (%s, '9.0.0')", [SCHEMA_VERSION + 1])
    before = local_content(pg)
    with CustomerStore(psycopg.connect(pg.dsn), RunRef("crm_pull_customers", "manual__older")) as store:
        with pytest.raises(ConfigurationError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than this crmsync"):
            store.ensure_schema()
    assert run_dag("crm_pull_customers") == "failed"
    assert local_content(pg) == before
