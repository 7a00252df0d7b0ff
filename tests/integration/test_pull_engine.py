"""The pull's engine on real PostgreSQL and the sandbox, below the DAGs: what the page
statement does that a run's outcome cannot show."""

from __future__ import annotations

import logging

import psycopg

from crmsync.flows import pull
from crmsync.hooks.sumit import SumitHook
from crmsync.store import CustomerStore, RunRef


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
