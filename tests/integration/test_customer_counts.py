"""crm_sync_customer_counts: how many customers the table holds and how many are linked, kept by
statement triggers for every writer (the console's totals read it instead of counting a
million index entries). Checked against count(*) after every kind of write, across concurrent
transactions, through the pull's compaction, an upgrade from a table without it, and a write
made with the triggers off."""

from __future__ import annotations

import pytest

from conftest import ensure_schema, set_sumit_connection


def kept(conn) -> tuple[int, int]:
    customers, linked = conn.execute("SELECT coalesce(sum(customers), 0), coalesce(sum(linked), 0) "
                                     "FROM crm_sync_customer_counts").fetchone()
    return int(customers), int(linked)


def counted(conn) -> tuple[int, int]:
    return conn.execute("SELECT count(*), count(sumit_customer_id) FROM sumit_customers").fetchone()


def rows_kept(conn) -> int:
    return conn.execute("SELECT count(*) FROM crm_sync_customer_counts").fetchone()[0]


@pytest.fixture
def fresh(pg):
    with pg.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS sumit_customers, crm_sync_customer_counts CASCADE")
    ensure_schema(pg)
    return pg


def test_the_counts_follow_every_kind_of_write(fresh):
    with fresh.connect(autocommit=True) as conn:
        assert kept(conn) == counted(conn) == (0, 0)
        steps = [
            "INSERT INTO sumit_customers (sumit_customer_id, name) "
            "SELECT CASE WHEN g <= 3 THEN 'L' || g END, 'Count ' || g FROM generate_series(1, 8) AS g",
            "UPDATE sumit_customers SET sumit_customer_id = 'L' || id WHERE name IN ('Count 4', 'Count 5')",
            "UPDATE sumit_customers SET sumit_customer_id = NULL WHERE name = 'Count 1'",
            "DELETE FROM sumit_customers WHERE name IN ('Count 2', 'Count 6')",
            "INSERT INTO sumit_customers (sumit_customer_id, name) VALUES ('L3', 'Twin'), ('L9', 'Nine') "
            "ON CONFLICT (sumit_customer_id) DO NOTHING",
            "INSERT INTO sumit_customers (sumit_customer_id, name) VALUES ('L9', 'Nine again') "
            "ON CONFLICT (sumit_customer_id) DO UPDATE SET sumit_customer_id = NULL",
        ]
        for step in steps:
            conn.execute(step)
            assert kept(conn) == counted(conn), step
        with conn.cursor() as cursor, cursor.copy("COPY sumit_customers (sumit_customer_id, name) FROM STDIN") as copy:
            copy.write_row(("C1", "Copied linked"))
            copy.write_row((None, "Copied local"))
        assert kept(conn) == counted(conn) == (9, 4)

        rows = rows_kept(conn)
        conn.execute("UPDATE sumit_customers SET city = 'Eilat'")  # no customer added, none linked: no row
        assert rows_kept(conn) == rows
        with conn.transaction(force_rollback=True):
            conn.execute("INSERT INTO sumit_customers (sumit_customer_id, name) VALUES ('R1', 'Rolled back')")
            assert kept(conn) == counted(conn) == (10, 5)
        assert kept(conn) == counted(conn) == (9, 4)

        conn.execute("TRUNCATE sumit_customers")
        assert kept(conn) == counted(conn) == (0, 0)


def test_concurrent_writers_never_wait_for_each_other_and_each_snapshot_is_exact(fresh):
    with fresh.connect(autocommit=True) as reader, fresh.connect() as first, fresh.connect() as second:
        for conn in (first, second):
            conn.execute("SET lock_timeout = '2s'")  # a writer that waited would fail, not hang
        first.execute("INSERT INTO sumit_customers (sumit_customer_id, name) SELECT 'A' || g, 'First' "
                      "FROM generate_series(1, 5) AS g")
        second.execute("INSERT INTO sumit_customers (name) SELECT 'Second' FROM generate_series(1, 3)")
        second.execute("SELECT crmsync_compact_customer_counts()")  # folds what it may: never the other's rows
        assert kept(reader) == counted(reader) == (0, 0)  # neither committed
        second.commit()
        assert kept(reader) == counted(reader) == (3, 0)
        first.execute("SELECT crmsync_compact_customer_counts()")
        first.commit()
        assert kept(reader) == counted(reader) == (8, 5)

        # a transaction folding the rows holds them; another one folds around it, without waiting
        second.execute("INSERT INTO sumit_customers (sumit_customer_id, name) VALUES ('B1', 'Held')")
        second.execute("SELECT crmsync_compact_customer_counts()")
        first.execute("INSERT INTO sumit_customers (name) VALUES ('Beside')")
        first.execute("SELECT crmsync_compact_customer_counts()")
        first.commit()
        second.commit()
        assert kept(reader) == counted(reader) == (10, 6)
        reader.execute("SELECT crmsync_compact_customer_counts()")
        assert rows_kept(reader) == 1 and kept(reader) == (10, 6)


@pytest.mark.usefixtures("guide_env")
def test_a_pull_folds_the_rows_its_pages_added(pg, sandbox, run_dag):
    sandbox.control.add_customers([{"Name": f"Folded {n}", "Email": f"folded{n}@example.co.il"} for n in range(7)])
    set_sumit_connection(sandbox.url, page_size=2)  # four pages: four inserts, each adding its row of counts
    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:
        assert kept(conn) == counted(conn) == (7, 7)
        assert rows_kept(conn) == 1


def test_an_upgraded_table_is_counted_once_and_a_recount_mends_writes_made_without_triggers(fresh):
    with fresh.connect(autocommit=True) as conn:
        # a table crmsync 1.2.0 made: customers, and neither the counts nor their triggers
        for trigger in ("inserted", "updated", "deleted", "truncated"):
            conn.execute(f"DROP TRIGGER sumit_customers_counted_{trigger} ON sumit_customers")
        conn.execute("DROP TABLE crm_sync_customer_counts")
        conn.execute("INSERT INTO sumit_customers (sumit_customer_id, name) "
                     "SELECT CASE WHEN g % 2 = 0 THEN 'U' || g END, 'Upgraded ' || g FROM generate_series(1, 9) AS g")
    ensure_schema(fresh)
    ensure_schema(fresh)  # twice: counted once
    with fresh.connect(autocommit=True) as conn:
        assert kept(conn) == counted(conn) == (9, 4)
        conn.execute("SET session_replication_role = replica")  # a bulk load with the triggers off
        conn.execute("INSERT INTO sumit_customers (sumit_customer_id, name) VALUES ('Q1', 'Quiet')")
        conn.execute("SET session_replication_role = DEFAULT")
        assert kept(conn) == (9, 4) != counted(conn)
        assert conn.execute("SELECT crmsync_recount_customers()").fetchone()[0] == 10
        assert kept(conn) == counted(conn) == (10, 5) and rows_kept(conn) == 1
