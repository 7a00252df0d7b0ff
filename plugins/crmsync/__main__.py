"""``crmsync`` (or ``python -m crmsync``): the installed release (``--version``: with the schema
version of the tables this release creates and upgrades, crm_sync_schema), and
``crmsync search-index``, which builds (or with ``--drop`` removes) the Customers search's
optional trigram indexes (crmsync.db.search_indexes)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    from crmsync import __version__
    from crmsync.db.schema_version import SCHEMA_VERSION

    parser = argparse.ArgumentParser(prog="crmsync", description="crmsync: PostgreSQL and SUMIT CRM in step, "
                                     "with Apache Airflow 3. The DAGs: `from crmsync.dags import *` in a dags folder.")
    parser.add_argument("--version", action="version",
                        version=f"crmsync {__version__} (tables: schema version {SCHEMA_VERSION})")
    commands = parser.add_subparsers(dest="command")
    index = commands.add_parser(
        "search-index", help="build the Customers search's trigram indexes (or drop them)",
        description="Build the console's optional search indexes on sumit_customers (pg_trgm; CONCURRENTLY, so "
                    "syncs go on). A search for a rare name, e-mail or phone over 1,000,000 customers then "
                    "answers in tens of milliseconds instead of about a second; every write of those columns "
                    "costs more (a first pull of 100,000 about twice as long): see docs/performance.md.")
    where = index.add_mutually_exclusive_group()
    where.add_argument("--conn-id", default=None,
                       help="the Airflow connection of the customers database (default: crm_postgres, or "
                            "CRMSYNC_POSTGRES_CONN_ID); needs Airflow configured in this shell")
    where.add_argument("--dsn", default=None, help="a libpq connection string or URL instead of a connection")
    index.add_argument("--drop", action="store_true", help="drop the indexes instead")
    args = parser.parse_args(argv)
    if args.command == "search-index":
        return _search_index(args)
    parser.print_help()
    return 0


def _search_index(args: argparse.Namespace) -> int:
    from crmsync.db import search_indexes

    try:
        conn = _connect(args)
    except Exception as exc:
        print(f"crmsync search-index: could not connect to the customers database: {exc}", file=sys.stderr)
        return 2
    try:
        with conn:
            conn.autocommit = True
            if args.drop:
                dropped = search_indexes.drop(conn)
                print(f"{len(dropped)} search index(es) dropped" if dropped else "no search index to drop")
            else:
                built = search_indexes.build(conn)
                print(f"search indexes ready ({len(built)} built now, {sum(built.values()):.1f} s)")
    except search_indexes.SearchIndexError as exc:
        print(f"crmsync search-index: {exc}", file=sys.stderr)
        return 1
    return 0


def _connect(args: argparse.Namespace) -> Any:
    if args.dsn:
        import psycopg

        return psycopg.connect(args.dsn)
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from crmsync.airflow_side import deployment

    conn = PostgresHook(postgres_conn_id=args.conn_id or deployment.POSTGRES_CONN_ID).get_conn()
    return conn


if __name__ == "__main__":
    sys.exit(main())
