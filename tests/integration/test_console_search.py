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
from crmsync.db import search_indexes, sql

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
    # a state filter with a search counts every match (its candidates are few): rows written by
    # another program than a sync are "changed" (no synced fingerprint)
    assert found(queries, "common", state="changed", page_size=500)[1] == 1200


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
        conn.execute("SET enable_seqscan = off")  # a 6,000-row table: make the planner show its index choice
        if query.short():
            conn.execute("SET enable_bitmapscan = off")
        return "\n".join(r[0] for r in conn.execute(
            "EXPLAIN " + sql.load("console_customers_search"), query.params(), prepare=False))


def test_the_command_says_what_is_wrong_and_never_prints_the_password(pg):
    with pg.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS sumit_customers CASCADE")
    missing = crmsync_cli("search-index", "--dsn", pg.dsn)
    assert missing.returncode == 1 and "there is no sumit_customers table here" in missing.stderr

    refused = crmsync_cli("search-index", "--dsn", "postgresql://someone:Sec-ret-9f2c@127.0.0.1:9/customers")
    assert refused.returncode == 2 and "could not connect to the customers database" in refused.stderr
    assert "Sec-ret-9f2c" not in refused.stderr + refused.stdout
