"""The pull's engine on real PostgreSQL and the sandbox, below the DAGs: what the page
statement does that a run's outcome cannot show."""

from __future__ import annotations

import logging

import psycopg

from crmsync.db.sql import load as sql_load
from crmsync.db.store import CustomerStore, RunRef
from crmsync.flows import pull
from crmsync.hooks.sumit import SumitHook


def test_the_page_statement_is_planned_for_each_page_never_prepared(pg, sandbox, guide_env):
    # psycopg prepares a statement after five runs; a plan made while the table was still
    # empty (a first pull) would then scan the whole table for every row of every later page.
    sandbox.control.add_customers([{"Name": f"C{i}"} for i in range(400)])  # 8 pages of 50
    hook = SumitHook()
    try:
        with CustomerStore(psycopg.connect(pg.dsn), RunRef("test", "planned-each-time")) as store:
            store.ensure_schema()
            counts = pull.run_pull(hook, store, log=logging.getLogger("test")).counts
            prepared = [s for (s,) in store.conn.execute("SELECT statement FROM pg_prepared_statements")]
    finally:
        hook.close()
    assert (counts.fetched, counts.created) == (400, 400)
    assert not [s for s in prepared if "One pulled page" in s]


def test_a_first_pull_notes_no_seen_ids_and_the_next_one_notes_them_all(pg, sandbox, guide_env):
    # Only a customer linked before a pull began can vanish: a pull into a table with no linked
    # customer (a first pull) does not note the ids it sees; the next pull notes every one and
    # still flags the customer the CRM no longer lists. A local-only row is never flagged.
    ids = sandbox.control.add_customers([{"Name": f"C{i}"} for i in range(120)])  # 3 pages of 50
    hook = SumitHook()

    def pull_and_seen(run_id: str) -> tuple[object, int]:
        with CustomerStore(psycopg.connect(pg.dsn), RunRef("test", run_id)) as store:
            store.ensure_schema()
            counts = pull.run_pull(hook, store, log=logging.getLogger("test")).counts
            return counts, store.conn.execute("SELECT count(*) FROM crmsync_seen").fetchone()[0]

    try:
        with psycopg.connect(pg.dsn) as conn:
            conn.execute(sql_load("schema"))
            conn.execute("INSERT INTO sumit_customers (name) VALUES ('Local only')")
        first, seen_first = pull_and_seen("first")
        sandbox.control.delete([ids[0]])
        second, seen_second = pull_and_seen("second")
    finally:
        hook.close()
    assert (first.created, first.vanished, seen_first) == (120, 0, 0)
    assert (second.fetched, second.vanished, seen_second) == (119, 1, 119)
    with psycopg.connect(pg.dsn) as conn:
        flagged = conn.execute("SELECT sumit_customer_id FROM sumit_customers "
                               "WHERE metadata ? 'crm_missing_since'").fetchall()
    assert flagged == [(str(ids[0]),)]


def test_the_store_compiles_no_statement_even_after_a_rollback(pg):
    """JIT off for the store's whole session: a statement whose plan the store makes costly (nested
    loops disabled) is never compiled, whatever PostgreSQL's default."""
    with CustomerStore(pg.connect(), RunRef("test", "manual__jit")) as store:
        store.fetch("SELECT 1 FROM pg_class", raw=True)
        store.rollback()  # a failed batch: the setting stays
        assert store.fetch("SHOW jit", raw=True) == [("off",)]
        with store.hash_joins():
            # a join only a nested loop can do: disabled, it costs the planner's 10^10
            plan = store.fetch("EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM generate_series(1, 300) AS a(i) "
                               "JOIN generate_series(1, 300) AS b(j) ON a.i < b.j", raw=True)[0][0][0]
        assert plan["Plan"]["Total Cost"] > 100_000  # PostgreSQL's default jit_above_cost
        assert "JIT" not in plan
    with pg.connect() as plain:
        assert plain.execute("SHOW jit").fetchone() == ("on",)  # the server's own default, untouched
