"""Which version crmsync's tables are at (table ``crm_sync_schema``), so a release can tell
which upgrade steps to run, and an older crmsync refuses tables a newer one upgraded.

Versions: 0 a database without crmsync's tables; 1 the tables of crmsync 1.0.0 (which kept no
version: recognised by its ``crm_sync_runs``); 2 crmsync 1.1.0; 3 crmsync 1.2.0 (crm_record_hash, crm_sync_listing.unchanged). A release that changes the
tables adds its version here and its steps to include/sql/schema.sql (every step idempotent:
``schema.sql`` brings any older version up, and running it twice changes nothing).
"""

from __future__ import annotations

from typing import Any

from crmsync.core.errors import ConfigurationError

SCHEMA_VERSION = 3
RELEASES = {1: "1.0.0", 2: "1.1.0", 3: "1.2.0"}  # the crmsync release that brought the tables to each version


def current(session: Any) -> int:
    """The version the tables are at now (call inside the schema's transaction, after its lock)."""
    has_record, has_tables = session.fetch("schema_version_tables")[0]
    if has_record:
        return int(session.fetch("schema_version_read")[0][0] or 0)
    return 1 if has_tables else 0


def refuse_newer(found: int, crmsync_version: str) -> None:
    if found > SCHEMA_VERSION:
        raise ConfigurationError(
            f"The customers database's crmsync tables are at schema version {found}, newer than this crmsync "
            f"({crmsync_version}) knows (up to {SCHEMA_VERSION}): a newer crmsync upgraded them. Install that "
            "release (or newer) on every Airflow worker; tables are never downgraded.")


def record(session: Any, found: int, crmsync_version: str) -> None:
    """Record the versions this upgrade passed: 1.0.0's tables, if found, and this release's."""
    rows = [(version, RELEASES[version]) for version in range(max(found, 1), SCHEMA_VERSION) if found]
    rows.append((SCHEMA_VERSION, crmsync_version))
    for version, release in rows:
        session.fetch("schema_version_record", {"version": version, "crmsync": release})
