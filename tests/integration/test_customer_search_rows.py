"""crm_sync_customer_search: one narrow row per customer (name and e-mail in lower case, the
phone's digits), kept by triggers for every writer, which the console's search reads when the
optional trigram indexes are not built. Checked against the table after every kind of write,
through a pull, an upgrade from a table without it, and a write made with the triggers off; and
through the console: a search finds customers by their search rows, checks each against the
search itself, and answers what the trigram indexes answer."""

from __future__ import annotations

import pytest

from crmsync.console.queries import ConsoleQueries, CustomerQuery
from crmsync.db import search_indexes

from conftest import ensure_schema, set_sumit_connection


def kept(conn) -> dict[int, tuple[str, str | None]]:
    return {i: (doc, digits) for i, doc, digits in conn.execute("SELECT id, doc, digits FROM crm_sync_customer_search")}


def expected(conn) -> dict[int, tuple[str, str | None]]:
    """The search rows computed here, in Python, from the customers as they are."""
    rows = conn.execute("SELECT id, name, email, phone FROM sumit_customers").fetchall()
    return {i: (f"{name or ''}\n{email or ''}".lower(),
                None if phone is None else phone.translate(str.maketrans("", "", " -().+/")))
            for i, name, email, phone in rows}


@pytest.fixture
def fresh(pg):
    with pg.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS sumit_customers, crm_sync_customer_search CASCADE")
    ensure_schema(pg)
    return pg


def found(conn, search: str) -> list[str]:
    rows, _ = ConsoleQueries(conn).customers(CustomerQuery.parse(search, None))
    return sorted(r["name"] for r in rows)


def test_the_search_rows_follow_every_kind_of_write(fresh):
    with fresh.connect(autocommit=True) as conn:
        assert kept(conn) == expected(conn) == {}
        steps = [
            "INSERT INTO sumit_customers (sumit_customer_id, name, email, phone) "
            "SELECT 'S' || g, 'Dana COHEN ' || g, 'Dana' || g || '@Example.CO.IL', '050-123 (45)' || g "
            "FROM generate_series(1, 6) AS g",
            "INSERT INTO sumit_customers (name) VALUES ('No Contact')",
            "UPDATE sumit_customers SET name = 'Renamed Ruth' WHERE name = 'Dana COHEN 1'",
            "UPDATE sumit_customers SET email = NULL, phone = '+972 (3) 555/1234' WHERE name = 'Dana COHEN 2'",
            "UPDATE sumit_customers SET city = 'Eilat', metadata = '{\"x\": 1}'",  # neither name, e-mail nor phone
            "UPDATE sumit_customers SET id = id + 1000 WHERE name = 'Dana COHEN 3'",
            # one statement: some rows change, some are written unchanged, one changes id and name at once
            "UPDATE sumit_customers SET name = CASE WHEN name = 'Dana COHEN 5' THEN 'Dana Levi 5' ELSE name END, "
            "phone = CASE WHEN id % 3 = 0 THEN NULL ELSE phone END, "
            "id = CASE WHEN name = 'Dana COHEN 6' THEN id + 2000 ELSE id END",
            "DELETE FROM sumit_customers WHERE name IN ('Dana COHEN 4', 'No Contact')",
            "INSERT INTO sumit_customers (sumit_customer_id, name) VALUES ('S5', 'Clash') "
            "ON CONFLICT (sumit_customer_id) DO UPDATE SET name = 'Merged Miriam'",
        ]
        for step in steps:
            conn.execute(step)
            assert kept(conn) == expected(conn), step
        with conn.cursor() as cursor, cursor.copy("COPY sumit_customers (name, email) FROM STDIN") as copy:
            copy.write_row(("Copied Carmel", "carmel@example.co.il"))
        assert kept(conn) == expected(conn) and len(kept(conn)) == 6
        assert kept(conn)[conn.execute("SELECT id FROM sumit_customers WHERE name = 'Dana COHEN 2'").fetchone()[0]] \
            == ("dana cohen 2\n", "97235551234")
        with conn.transaction(force_rollback=True):
            conn.execute("INSERT INTO sumit_customers (name) VALUES ('Rolled back')")
            assert kept(conn) == expected(conn)
        assert kept(conn) == expected(conn) and len(kept(conn)) == 6

        conn.execute("TRUNCATE sumit_customers")
        assert kept(conn) == expected(conn) == {}


@pytest.mark.usefixtures("guide_env")
def test_a_pull_writes_the_search_rows_of_what_it_inserts_and_changes(pg, sandbox, run_dag):
    sandbox.control.add_customers([{"Name": f"Pulled Pnina {n}", "Email": f"pnina{n}@example.co.il",
                                    "Phone": f"054-700-00{n:02d}"} for n in range(5)])
    set_sumit_connection(sandbox.url, page_size=2)  # three pages: three inserts
    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:
        assert len(kept(conn)) == 5 and kept(conn) == expected(conn)
        assert found(conn, "PNINA 3") == ["Pulled Pnina 3"]
        assert found(conn, "054 700 0004") == ["Pulled Pnina 4"]


@pytest.mark.usefixtures("guide_env")
def test_a_pull_packs_the_search_rows_once_enough_are_not_packed_and_a_search_still_finds_every_change(
        pg, sandbox, run_dag, monkeypatch):
    from crmsync.db import pull_statements

    monkeypatch.setattr(pull_statements, "SEARCH_PACK_AFTER", 4)  # 200,000 in production
    ids = sandbox.control.add_customers([{"Name": f"Packed Pazit {n}", "Email": f"pazit{n}@example.co.il",
                                          "Phone": f"054-800-00{n:02d}"} for n in range(3)])
    set_sumit_connection(sandbox.url, page_size=2)

    def packs(conn):
        return conn.execute("SELECT packed_customers FROM crm_sync_customer_search_pack").fetchall()

    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:  # three customers are not enough
        assert packs(conn) in ([], [(0,)]) and found(conn, "PAZIT 2") == ["Packed Pazit 2"]
    sandbox.control.add_customers([{"Name": "Packed Pazit 3", "Email": "pazit3@example.co.il"}])
    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:  # four are: packed by the pull
        assert packs(conn) == [(4,)]
        assert conn.execute("SELECT count(*) FROM crm_sync_customer_search_packed").fetchone()[0] == 1
        assert found(conn, "pazit 3") == ["Packed Pazit 3"] and found(conn, "054 800 0001") == ["Packed Pazit 1"]

    # renamed in SUMIT after the packing: found by the new name only, and not packed again for one
    sandbox.control.add_customers([{"CustomerID": ids[0], "Name": "Renamed Rachel", "Email": "pazit0@example.co.il",
                                    "Phone": "054-800-0000"}])
    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:
        assert packs(conn) == [(4,)]
        assert found(conn, "renamed rachel") == ["Renamed Rachel"] and found(conn, "packed pazit 0") == []
        assert found(conn, "pazit") == ["Packed Pazit 1", "Packed Pazit 2", "Packed Pazit 3", "Renamed Rachel"]


def test_an_upgraded_table_gets_its_rows_once_and_a_rebuild_mends_writes_made_without_triggers(fresh):
    with fresh.connect(autocommit=True) as conn:
        # a table crmsync 1.2.0 made: customers, and neither the search rows nor their triggers
        for trigger in ("inserted", "updated", "deleted", "truncated"):
            conn.execute(f"DROP TRIGGER sumit_customers_search_{trigger} ON sumit_customers")
        conn.execute("DROP TABLE crm_sync_customer_search")
        conn.execute("INSERT INTO sumit_customers (name, email) SELECT 'Old Oren ' || g, 'oren' || g || '@x.co.il' "
                     "FROM generate_series(1, 9) AS g")
    ensure_schema(fresh)
    ensure_schema(fresh)  # twice: written once, no error
    with fresh.connect(autocommit=True) as conn:
        assert len(kept(conn)) == 9 and kept(conn) == expected(conn)
        conn.execute("SET session_replication_role = replica")  # a bulk load with the triggers off
        conn.execute("INSERT INTO sumit_customers (name) VALUES ('Quiet Quincy')")
        conn.execute("UPDATE sumit_customers SET name = 'Silent Sara' WHERE name = 'Old Oren 1'")
        conn.execute("SET session_replication_role = DEFAULT")
        assert kept(conn) != expected(conn)
        assert conn.execute("SELECT crmsync_rebuild_customer_search()").fetchone()[0] == 10
        assert kept(conn) == expected(conn)


def test_a_table_with_the_row_trigger_of_an_earlier_build_gets_the_statement_trigger(fresh):
    with fresh.connect(autocommit=True) as conn:
        conn.execute("""CREATE OR REPLACE TRIGGER sumit_customers_search_updated
                        AFTER UPDATE OF id, name, email, phone ON sumit_customers FOR EACH ROW
                        WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION crmsync_search_updated()""")
        conn.execute("INSERT INTO sumit_customers (name, phone) SELECT 'Tal ' || g, '03-' || g FROM generate_series(1, 4) AS g")
    ensure_schema(fresh)
    with fresh.connect(autocommit=True) as conn:
        levels = conn.execute("SELECT tgtype & 1 FROM pg_trigger WHERE tgrelid = 'sumit_customers'::regclass "
                              "AND tgname = 'sumit_customers_search_updated'").fetchall()
        assert levels == [(0,)]  # one trigger, for each statement (a row trigger has bit 1 set)
        conn.execute("UPDATE sumit_customers SET phone = '04-' || id WHERE name IN ('Tal 1', 'Tal 2')")
        assert kept(conn) == expected(conn) and kept(conn)[min(kept(conn))][1].startswith("04")


def test_a_search_reads_the_rows_checks_each_customer_and_answers_as_the_trigram_indexes_do(fresh):
    with fresh.connect(autocommit=True) as conn:
        conn.execute("INSERT INTO sumit_customers (sumit_customer_id, name, email, phone) "
                     "SELECT 'R' || g, 'Rivka Levi ' || g, 'rivka' || g || '@example.co.il', '052-' || lpad(g::text, 7, '0') "
                     "FROM generate_series(1, 40) AS g")
        ids = dict(conn.execute("SELECT name, id FROM sumit_customers").fetchall())
        # stale rows, as a write with the triggers off leaves them: one customer's row is gone,
        # another's says what the customer no longer is
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM crm_sync_customer_search WHERE id = %s", [ids["Rivka Levi 7"]])
        conn.execute("UPDATE crm_sync_customer_search SET doc = 'gideon gold', digits = '0529999999' WHERE id = %s",
                     [ids["Rivka Levi 8"]])
        conn.execute("SET session_replication_role = DEFAULT")

    searches = ["rivka levi 7", "Rivka Levi 8", "gideon", "0529999999", "rivka12@", "052-000-0033", str(ids["Rivka Levi 9"]),
                "R15", "levi 1"]
    with fresh.connect() as conn:
        through_rows = {search: found(conn, search) for search in searches}
    # the rows are what a search reads: a customer without one is not found, one whose row says
    # otherwise is not found by what the row says (each is checked against the search itself)
    assert through_rows["rivka levi 7"] == [] and through_rows["Rivka Levi 8"] == []
    assert through_rows["gideon"] == [] and through_rows["0529999999"] == []
    assert through_rows["rivka12@"] == ["Rivka Levi 12"] and through_rows["052-000-0033"] == ["Rivka Levi 33"]
    assert "Rivka Levi 9" in through_rows[str(ids["Rivka Levi 9"])] and through_rows["R15"] == ["Rivka Levi 15"]
    assert through_rows["levi 1"] == ["Rivka Levi 1", *[f"Rivka Levi {n}" for n in range(10, 20)]]

    with fresh.connect(autocommit=True) as admin:
        admin.execute("SELECT crmsync_rebuild_customer_search()")
        with fresh.connect() as conn:
            rebuilt = {search: found(conn, search) for search in searches}
        assert rebuilt["rivka levi 7"] == ["Rivka Levi 7"] and rebuilt["Rivka Levi 8"] == ["Rivka Levi 8"]
        search_indexes.build(admin, log=lambda line: None)
        try:
            with fresh.connect() as conn:
                assert {search: found(conn, search) for search in searches} == rebuilt
                # with the indexes a search reads them, not the rows
                admin.execute("SET session_replication_role = replica")
                admin.execute("DELETE FROM crm_sync_customer_search WHERE id = %s", [ids["Rivka Levi 7"]])
                assert found(conn, "rivka levi 7") == ["Rivka Levi 7"]
        finally:
            search_indexes.drop(admin, log=lambda line: None)
