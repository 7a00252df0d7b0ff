"""The Customers search's optional trigram indexes (include/sql/search_indexes.sql), for
``crmsync search-index``: built CONCURRENTLY (syncs and the console go on), listed, dropped.

They make a search for a rare name, e-mail or phone over a million customers answer from a few
index pages, and they cost every write of those columns (docs/performance.md has both figures):
the operator decides, so crmsync's schema does not create them.
"""

from __future__ import annotations

import time
from typing import Any

from crmsync.db import sql

NAMES = ("sumit_customers_name_trgm_idx", "sumit_customers_email_trgm_idx", "sumit_customers_phone_trgm_idx")


class SearchIndexError(RuntimeError):
    """The indexes could not be built; the message says why and what to do."""


def present(conn: Any) -> dict[str, bool]:
    """Each search index that exists, and whether it is valid (a build that was interrupted
    leaves an invalid one, which answers nothing)."""
    rows = conn.execute(sql.load("search_indexes_present"), {"names": list(NAMES)}).fetchall()
    return {name: bool(valid) for name, valid in rows}


def build(conn: Any, log: Any = print) -> dict[str, float]:
    """Build the indexes that are missing (an invalid one is dropped and built again); the
    seconds each took. ``conn`` must be in autocommit mode (CONCURRENTLY needs it)."""
    if not conn.autocommit:
        raise ValueError("search indexes are built CONCURRENTLY: the connection must be in autocommit mode")
    if conn.execute("SELECT to_regclass('sumit_customers')").fetchone()[0] is None:
        raise SearchIndexError("there is no sumit_customers table here: run a crmsync DAG once (it creates the "
                               "tables), or check that the connection names the customers database")
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # psycopg's errors: no contrib package, or no right to create it
        raise SearchIndexError(
            f"the search indexes need PostgreSQL's pg_trgm extension, which could not be created ({exc}). "
            "Install PostgreSQL's contrib package on the server, or ask a superuser to run "
            "CREATE EXTENSION pg_trgm in this database, then run this again") from None
    for name, valid in present(conn).items():
        if not valid:
            log(f"dropping {name}: an earlier build of it was interrupted")
            conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    built: dict[str, float] = {}
    existing = present(conn)
    for statement in _statements():
        name = next(n for n in NAMES if n in statement)
        if name in existing:
            log(f"{name}: already there")
            continue
        log(f"building {name} ...")
        started = time.perf_counter()
        conn.execute(statement)
        built[name] = time.perf_counter() - started
        log(f"{name}: built in {built[name]:.1f} s")
    return built


def drop(conn: Any, log: Any = print) -> list[str]:
    """Drop the search indexes (searches then read every customer again); the names dropped."""
    if not conn.autocommit:
        raise ValueError("search indexes are dropped CONCURRENTLY: the connection must be in autocommit mode")
    dropped = []
    for name in present(conn):
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        log(f"dropped {name}")
        dropped.append(name)
    return dropped


def _statements() -> list[str]:
    """The CREATE INDEX statements of include/sql/search_indexes.sql, one by one (CONCURRENTLY
    cannot run in a multi-statement string)."""
    text = "\n".join(line for line in sql.load("search_indexes").splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in text.split(";") if "CREATE INDEX" in part]
