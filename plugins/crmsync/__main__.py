"""``crmsync --version`` (or ``python -m crmsync --version``): the installed release, and the
schema version of the tables this release creates and upgrades (crm_sync_schema)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from crmsync import __version__
    from crmsync.db.schema_version import SCHEMA_VERSION

    parser = argparse.ArgumentParser(prog="crmsync", description="crmsync: PostgreSQL and SUMIT CRM in step, "
                                     "with Apache Airflow 3. The DAGs: `from crmsync.dags import *` in a dags folder.")
    parser.add_argument("--version", action="version",
                        version=f"crmsync {__version__} (tables: schema version {SCHEMA_VERSION})")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
