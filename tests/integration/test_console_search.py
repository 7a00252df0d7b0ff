"""The Customers search at scale: a common word counts its matches only up to 1,000 and still
pages on; `crmsync search-index` (the command users run) builds the optional trigram indexes,
the same searches then answer the same customers through them, and it drops them again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crmsync.console.pages import customers_page_values, render_customers
from crmsync.console.queries import SEARCH_COUNT_LIMIT, ConsoleQueries, CustomerQuery
from crmsync.db import search_indexes

from conftest import ensure_schema

pytestmark = pytest.mark.usefixtures("guide_env")

ROOT = Path(__file__).resolve().parents[2]


def fill(pg, count: int, name: str = "Common", start: int = 1) -> None:
    """``count`` linked customers named "<name> <n>", with distinct e-mails and phones."""
    with pg.connect() as conn:
        conn.execute(
            "INSERT INTO sumit_customers (sumit_customer_id, name, email, phone) "
            "SELECT 'C' || g, %s || ' ' || g, lower(%s) || g || '@shop' || (g %% 7) || '.example', "
            "       '050-' || lpad(g::text, 7, '0') FROM generate_series(%s::int, %s::int) AS g",
            [name, name, start, start + count - 1])


def found(queries, search, state=None, page=1, page_size=50):
    rows, total = queries.customers(CustomerQuery.parse(search, state, page, page_size))
    return [r["id"] for r in rows], total


def crmsync_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    return subprocess.run([sys.executable, "-m", "crmsync", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture
def queries(pg):
    ensure_schema(pg)
    with pg.connect() as conn:
        yield ConsoleQueries(conn)


def test_a_common_word_counts_up_to_the_limit_and_still_pages_on(pg, queries):
    fill(pg, 1_200)
    fill(pg, 1_000, name="Exact", start=5_000)
    with pg.connect() as conn:
        all_common = [r[0] for r in conn.execute("SELECT id FROM sumit_customers WHERE name LIKE 'Common %' ORDER BY id")]

    ids, total = found(queries, "common")
    assert ids == all_common[:50] and total == SEARCH_COUNT_LIMIT + 1  # counted no further
    values = customers_page_values(queries, CustomerQuery.parse("common", None))
    assert values["more"] and values["total"] == SEARCH_COUNT_LIMIT and values["pages"] == 20
    html = render_customers(values)
    assert "more than 1,000 customers: narrow the search" in html and 'rel="next"' in html

    # past the 1,000th match, pages go on in id order, and a page that is not full is its own count
    assert found(queries, "common", page=21) == (all_common[1000:1050], SEARCH_COUNT_LIMIT + 1)
    assert found(queries, "common", page=3, page_size=500) == (all_common[1000:1200], 1200)
    assert found(queries, "common", page=4, page_size=500) == ([], SEARCH_COUNT_LIMIT + 1)  # beyond the end

    # exactly 1,000 matches: counted, not "more than"
    values = customers_page_values(queries, CustomerQuery.parse("exact", None))
    assert not values["more"] and values["total"] == 1000
    assert "1,000 customers" in render_customers(values) and "more than" not in render_customers(values)
    # a search within another state counts up to the limit too, and pages on: rows written by
    # another program than a sync are "changed" (no synced fingerprint)
    assert found(queries, "common", state="changed", page_size=500) == (all_common[:500], SEARCH_COUNT_LIMIT + 1)
    assert found(queries, "common", state="changed", page=3, page_size=500) == (all_common[1000:1200], 1200)
    values = customers_page_values(queries, CustomerQuery.parse("common", "changed"))
    assert values["more"] and "more than 1,000 customers: narrow the search" in render_customers(values)
    # a state alone is counted whole
    assert found(queries, None, state="changed")[1] == 2_200


def test_a_search_within_the_synced_filter_finds_only_synced_customers_and_counts_up_to_the_limit(pg, queries):
    fill(pg, 1_200)
    with pg.connect() as conn:
        # in sync, as a pull leaves them; every tenth edited since
        conn.execute("UPDATE sumit_customers AS c SET synced_fingerprint = crmsync_local_fingerprint(c), "
                     "crm_fingerprint = 'crm', local_changed = false")
        conn.execute("UPDATE sumit_customers SET city = 'Edited' WHERE id % 10 = 0")
        states = dict(conn.execute("SELECT name, sync_state FROM crm_sync_customer_states").fetchall())
        ids = dict(conn.execute("SELECT name, id FROM sumit_customers").fetchall())
        conn.commit()
    synced = sorted(ids[name] for name, state in states.items() if state == "synced")
    assert SEARCH_COUNT_LIMIT < len(synced) < 1_200

    rows, total = found(queries, "common", state="synced")
    assert rows == synced[:50] and total == SEARCH_COUNT_LIMIT + 1  # counted no further
    values = customers_page_values(queries, CustomerQuery.parse("common", "synced"))
    assert values["more"] and "more than 1,000 customers: narrow the search" in render_customers(values)
    # a rarer one: exactly the synced customers it matches, counted
    expected = sorted(ids[name] for name in ids if "Common 17" in name and states[name] == "synced")
    assert 0 < len(expected) < len([name for name in ids if "Common 17" in name])
    assert found(queries, "common 17", state="synced") == (expected, len(expected))
    edited = next(name for name in ids if "Common 17" in name and states[name] == "changed")
    assert found(queries, edited, state="synced") == ([], 0)
    assert found(queries, edited, state="changed") == ([ids[edited]], 1)


def test_an_email_search_finds_the_address_anywhere_inside(pg, queries):
    with pg.connect() as conn:
        conn.execute("INSERT INTO sumit_customers (name, email) VALUES ('A', 'john@acme.com'), "
                     "('B', 'bigjohn@acme.com'), ('C', 'john@other.com'), ('D', 'JOHN@ACME.COM.IL'), ('E', NULL)")
        by_name = dict(conn.execute("SELECT name, id FROM sumit_customers").fetchall())

    def names(search):
        ids = set(found(queries, search)[0])
        return {name for name, id_ in by_name.items() if id_ in ids}

    assert names("john@acme.com") == {"A", "B", "D"}  # inside, any case
    assert names("John@Acme") == {"A", "B", "D"}
    assert names("@acme.com") == {"A", "B", "D"}
    assert names("n@other") == {"C"}
    assert names("hn@a") == {"A", "B", "D"}  # too short a part before "@" to ask the index by


SEARCHES = ("Rare 4321", "rare", "ra", "r", "rare4321@shop", "rare4321@shop2.example", "@shop3.example",
            "e43@", "050-0004321", "0004321", "43", "4", "C4321", "no such customer", "%", "_")


def test_search_indexes_answer_the_same_customers_through_the_indexes(pg, queries):
    fill(pg, 6_000, name="Rare")
    with pg.connect() as conn:
        conn.execute("ANALYZE sumit_customers")
    before = {search: found(queries, search, page_size=500) for search in SEARCHES}
    assert before["Rare 4321"][1] == before["rare4321@shop2.example"][1] == before["e43@"][1] == 1
    assert before["@shop3.example"][1] == 857 and before["rare"][1] == SEARCH_COUNT_LIMIT + 1

    built = crmsync_cli("search-index", "--dsn", pg.dsn)
    assert built.returncode == 0, built.stderr
    assert "search indexes ready (3 built now" in built.stdout
    with pg.connect() as conn:
        assert search_indexes.present(conn) == dict.fromkeys(search_indexes.NAMES, True)
        conn.execute("ANALYZE sumit_customers")
    again = crmsync_cli("search-index", "--dsn", pg.dsn)
    assert again.returncode == 0 and "(0 built now" in again.stdout and "already there" in again.stdout

    assert {search: found(queries, search, page_size=500) for search in SEARCHES} == before
    # ... and through them: a rare name, an e-mail and a phone each read their index
    plans = {search: plan(pg, search) for search in ("Rare 4321", "rare4321@shop", "0004321", "ra")}
    assert "sumit_customers_name_trgm_idx" in plans["Rare 4321"]
    assert "sumit_customers_email_trgm_idx" in plans["rare4321@shop"]
    assert "sumit_customers_phone_trgm_idx" in plans["0004321"]
    assert "trgm" not in plans["ra"]  # two letters have no trigram: no index read whole

    dropped = crmsync_cli("search-index", "--dsn", pg.dsn, "--drop")
    assert dropped.returncode == 0 and "3 search index(es) dropped" in dropped.stdout
    with pg.connect() as conn:
        assert search_indexes.present(conn) == {}
    assert {search: found(queries, search, page_size=500) for search in SEARCHES} == before


def plan(pg, search: str) -> str:
    query = CustomerQuery.parse(search, None)
    with pg.connect() as conn:
        statement, params = ConsoleQueries(conn).customers_statement(query)
        conn.execute("SET enable_seqscan = off")  # a 6,000-row table: make the planner show its index choice
        return "\n".join(r[0] for r in conn.execute("EXPLAIN " + statement, params, prepare=False))


def test_the_command_says_what_is_wrong_and_never_prints_the_password(pg):
    with pg.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS sumit_customers CASCADE")
    missing = crmsync_cli("search-index", "--dsn", pg.dsn)
    assert missing.returncode == 1 and "there is no sumit_customers table here" in missing.stderr

    refused = crmsync_cli("search-index", "--dsn", "postgresql://someone:Sec-ret-9f2c@127.0.0.1:9/customers")
    assert refused.returncode == 2 and "could not connect to the customers database" in refused.stderr
    assert "Sec-ret-9f2c" not in refused.stderr + refused.stdout


# Every way the console can reach a search's candidates (console_customers_page.sql) answers
# exactly what a plain reading of crm_sync_customer_states says: the search rows in id order
# (stream), every search row at once, the trigram indexes, a state's own customers.
PATH_SEARCHES = ("common", "Common 17", "common1@shop1", "@shop3.example", "050-0000017", "17", "C17", "newest",
                 "Newest 9", "stale", "no such customer", "a", "%")


def expected_page(states, search, state, page, page_size=50):
    """The page and total by the console's rules, from every row of the view, in Python."""
    def matches(row):
        if search is None:
            return True
        query = CustomerQuery.parse(search, state)
        if query.kind() == "email":
            return search.lower() in (row["email"] or "").lower()
        if query.kind() == "number":
            digits = "".join(ch for ch in search if ch.isdigit())
            phone = "".join(ch for ch in row["phone"] or "" if ch.isdigit())
            return digits in phone or str(row["id"]) == search or row["sumit_customer_id"] == search
        return any(search.lower() in (row[key] or "").lower() for key in ("name", "email")) \
            or row["sumit_customer_id"] == search

    ids = [row["id"] for row in states if (state is None or row["sync_state"] == state) and matches(row)]
    offset = (page - 1) * page_size
    shown = ids[offset:offset + page_size]
    if len(shown) < page_size and (shown or offset == 0):
        return shown, offset + len(shown)
    return shown, min(len(ids), SEARCH_COUNT_LIMIT + 1) if search is not None else len(ids)


def test_every_way_to_the_candidates_finds_what_the_view_says(pg, queries, monkeypatch):
    import crmsync.console.queries as console_queries

    fill(pg, 1_200)
    with pg.connect() as conn:
        # in sync, as a pull leaves them; every tenth edited since; then customers only the
        # newest rows hold a word of: local ones never pushed, and linked ones in sync
        conn.execute("UPDATE sumit_customers AS c SET synced_fingerprint = crmsync_local_fingerprint(c), "
                     "crm_fingerprint = 'crm', local_changed = false")
        conn.execute("UPDATE sumit_customers SET city = 'Edited' WHERE id % 10 = 0")
    fill(pg, 300, name="Newest", start=2_000)
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET sumit_customer_id = NULL WHERE name LIKE 'Newest %' AND id % 2 = 0")
        conn.execute("UPDATE sumit_customers AS c SET synced_fingerprint = crmsync_local_fingerprint(c), "
                     "crm_fingerprint = 'crm', local_changed = false WHERE name LIKE 'Newest %'")
        # a customer with two search rows (no unique key keeps them one), and one renamed with the
        # triggers off: its search row still holds the old name, which no path may answer
        conn.execute("INSERT INTO crm_sync_customer_search SELECT * FROM crm_sync_customer_search "
                     "WHERE id = (SELECT id FROM sumit_customers WHERE name = 'Common 17')")
        conn.execute("INSERT INTO sumit_customers (name, email) VALUES ('Stale Name', 'stale@old.example')")
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE sumit_customers SET name = 'Renamed', email = 'renamed@new.example' WHERE name = 'Stale Name'")
        conn.execute("RESET session_replication_role")
        conn.execute("ANALYZE sumit_customers")
        conn.execute("ANALYZE crm_sync_customer_search")
        states = conn.execute("SELECT id, sumit_customer_id, name, email, phone, sync_state "
                              "FROM crm_sync_customer_states ORDER BY id").fetchall()
    columns = ("id", "sumit_customer_id", "name", "email", "phone", "sync_state")
    states = [dict(zip(columns, row)) for row in states]
    assert {row["sync_state"] for row in states} >= {"synced", "changed", "never_synced"}

    cases = [(search, state, page) for search in PATH_SEARCHES for state in (None, "synced", "changed", "never_synced")
             for page in (1, 2)] + [(None, state, 1) for state in ("never_synced", "missing")]
    expected = {case: expected_page(states, *case) for case in cases}
    assert expected[("common", None, 1)][1] == SEARCH_COUNT_LIMIT + 1 and expected[("newest", "synced", 1)][1] == 150
    assert expected[("stale", None, 1)] == ([], 0) and expected[("Common 17", None, 1)][1] == 11

    def answers():
        return {case: found(queries, case[0], case[1], case[2]) for case in cases}

    monkeypatch.setattr(console_queries, "SEARCH_PROBE_ROWS", 200)  # "newest": none in the first rows
    for hits in (0, 10**9, console_queries.SEARCH_STREAM_HITS):  # always stream, never, as chosen
        monkeypatch.setattr(console_queries, "SEARCH_STREAM_HITS", hits)
        assert answers() == expected, f"stream hits {hits}"
    with pg.connect(autocommit=True) as conn:
        search_indexes.build(conn, log=lambda *_: None)
        conn.execute("ANALYZE sumit_customers")
    try:
        for hits in (10**9, console_queries.SEARCH_STREAM_HITS):
            monkeypatch.setattr(console_queries, "SEARCH_STREAM_HITS", hits)
            assert answers() == expected, f"with the trigram indexes, stream hits {hits}"
    finally:
        with pg.connect(autocommit=True) as conn:
            search_indexes.drop(conn, log=lambda *_: None)


def test_a_search_reads_on_in_id_order_only_when_the_first_search_rows_hold_it_often(pg, queries, monkeypatch):
    import crmsync.console.queries as console_queries

    fill(pg, 1_000)
    fill(pg, 100, name="Newest", start=5_000)
    monkeypatch.setattr(console_queries, "SEARCH_PROBE_ROWS", 500)

    def statement(search, state=None):
        return queries.customers_statement(CustomerQuery.parse(search, state))[0]

    # "common": every one of the first 500 search rows; "Common 17": 11 of them, under the 20 asked
    assert "candidates AS NOT MATERIALIZED" in statement("common")
    assert "candidates AS NOT MATERIALIZED" in statement("common", "synced")
    for rarer in ("Common 17", "newest"):  # the newest customers' word: none among the first rows
        text = statement(rarer)
        assert "candidates AS MATERIALIZED" in text and "FROM crm_sync_customer_search AS s" in text
    # another state: its own customers, whatever the search
    assert "FROM crm_sync_errors" in statement("common", "push_failed")
    with pg.connect(autocommit=True) as conn:
        search_indexes.build(conn, log=lambda *_: None)
    try:
        assert "FROM crm_sync_customer_search AS s" not in statement("newest")  # through the indexes
        assert "candidates AS NOT MATERIALIZED" in statement("common")
        assert "FROM crm_sync_customer_search AS s" in statement("ne")  # no trigram in two letters
        assert "FROM crm_sync_customer_search AS s" in statement("st@new.example")  # the domain's trigrams
        assert "FROM crm_sync_customer_search AS s" not in statement("newest7@shop")
    finally:
        with pg.connect(autocommit=True) as conn:
            search_indexes.drop(conn, log=lambda *_: None)


def test_the_packed_search_rows_answer_what_the_view_says_after_every_kind_of_write_since(pg, queries, monkeypatch):
    """A search that reads every search row reads most of them from the packs of 56
    (crm_sync_customer_search_packed); what was written since the packing (renamed, new, moved,
    deleted customers, a text the packs cannot hold) comes from the search rows, so the answers
    are those of the view itself."""
    import crmsync.console.queries as console_queries

    fill(pg, 1_200)
    with pg.connect() as conn:
        assert conn.execute("SELECT crmsync_pack_customer_search()").fetchone()[0] == 1_200
        assert conn.execute("SELECT count(*), max(cardinality(ids)) FROM crm_sync_customer_search_packed").fetchone() \
            == (22, 56)
        conn.execute("UPDATE sumit_customers SET name = 'Renamed Rina', email = 'rina@moved.example' WHERE name = 'Common 17'")
        conn.execute("UPDATE sumit_customers SET phone = '03-7654321' WHERE name = 'Common 18'")
        conn.execute("UPDATE sumit_customers SET id = id + 10000 WHERE name = 'Common 19'")
        conn.execute("DELETE FROM sumit_customers WHERE name = 'Common 20'")
        conn.execute("INSERT INTO sumit_customers (name, email) VALUES (E'Unit\\x1fSep', 'sep@x.example')")
        # deleted, then written back with the same id (restored): the packs hold the old text
        gone = [r[0] for r in conn.execute("DELETE FROM sumit_customers WHERE name IN ('Common 30', 'Common 31') RETURNING id")]
        conn.execute("INSERT INTO sumit_customers (id, name) VALUES (%s, 'Restored Rut')", [min(gone)])
        conn.execute("INSERT INTO sumit_customers (id, name, phone) VALUES (%s, 'Back Boaz', '09-1112223')", [max(gone)])
        conn.commit()
    fill(pg, 300, name="Newest", start=2_000)  # inserted since: ids above the packs'
    with pg.connect() as conn:
        # a customer renamed with the triggers off: its search row (and pack) holds the old name
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE sumit_customers SET name = 'Quiet Name' WHERE name = 'Common 21'")
        conn.execute("RESET session_replication_role")
        states = conn.execute("SELECT id, sumit_customer_id, name, email, phone, sync_state "
                              "FROM crm_sync_customer_states ORDER BY id").fetchall()
        recent = conn.execute("SELECT count(*) FROM crm_sync_customer_search_recent").fetchone()[0]
        conn.commit()
    # renamed, re-phoned, and the two written back; the moved one and the new ones have ids above
    # the packs', read from their search rows
    assert recent == 4
    columns = ("id", "sumit_customer_id", "name", "email", "phone", "sync_state")
    states = [dict(zip(columns, row)) for row in states]
    searches = ("Common 17", "renamed rina", "rina@moved", "7654321", "050-0000018", "Common 19", "Common 20",
                "Common 21", "unit", "sep@x", "Restored", "back boaz", "1112223", "Newest 2099",
                "newest", "C1100", "common1100@shop", "0001100", "1100", "no such customer", "%")
    cases = [(search, state, 1) for search in searches for state in (None, "changed")] + [("newest", None, 2)]
    expected = {case: expected_page(states, *case) for case in cases}
    assert expected[("renamed rina", None, 1)][1] == expected[("rina@moved", None, 1)][1] == 1
    assert expected[("Restored", None, 1)][1] == expected[("back boaz", None, 1)][1] == expected[("unit", None, 1)][1] == 1

    monkeypatch.setattr(console_queries, "SEARCH_STREAM_HITS", 10**9)  # never in id order: every row at once
    statement = queries.customers_statement(CustomerQuery.parse("renamed rina", None))[0]
    assert "FROM crm_sync_customer_search_packed" in statement
    assert {case: found(queries, case[0], case[1], case[2]) for case in cases} == expected
    with pg.connect() as conn:  # packed again: the same answers, nothing left beside the packs
        assert conn.execute("SELECT crmsync_pack_customer_search()").fetchone()[0] == len(states) - 1  # not E'\x1f'
        assert conn.execute("SELECT count(*) FROM crm_sync_customer_search_recent").fetchone()[0] == 1
        conn.commit()
    assert {case: found(queries, case[0], case[1], case[2]) for case in cases} == expected
    with pg.connect() as conn:  # emptied with the table
        conn.execute("TRUNCATE sumit_customers")
        assert conn.execute("SELECT (SELECT count(*) FROM crm_sync_customer_search_packed) "
                            "+ (SELECT count(*) FROM crm_sync_customer_search_pack)").fetchone()[0] == 0
        conn.commit()
