"""The ``sumit_customers`` asset: what crmsync tells Airflow when a run changed the table (pure).

A task that changed customers adds an event for the asset ``sumit_customers`` (its URI is the
table's address in the customers database, the postgres provider's form
``postgres://<host>:<port>/<database>/<schema>/<table>``) with the task's counts in the
event's ``extra``; a task that changed nothing adds none. The tasks declare the alias
``crmsync_customers_changed`` as their outlet, because an asset outlet always gets an event
when its task succeeds, and because the URI comes from the Airflow connection, read when the
task runs, not when the DAG file is parsed. A downstream DAG schedules on that alias
(``schedule=AssetAlias("crmsync_customers_changed")``) or on the asset itself, named with its
URI. (On Airflow 3.3 a schedule on ``Asset.ref(name="sumit_customers")`` starts runs, late and
without their triggering events: measured, not used.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

CUSTOMERS_ASSET_NAME = "sumit_customers"
CHANGES_ALIAS_NAME = "crmsync_customers_changed"
COUNT_KEYS = ("created", "updated", "vanished", "changed")
DEFAULT_PORT = 5432


def customers_asset_uri(host: str | None, port: int | None, database: str | None, schema: str = "public",
                        table: str = "sumit_customers") -> str:
    """The table's address as the postgres provider writes an asset URI (its default port 5432)."""
    if not host:
        raise ValueError("the customers database connection has no host, so the table has no asset URI")
    if not database:
        raise ValueError("the customers database connection names no database (its schema field)")
    netloc = f"[{host}]" if ":" in host else quote(host, safe="")  # an IPv6 address, or a name (a socket path)
    return f"postgres://{netloc}:{int(port or DEFAULT_PORT)}/{quote(database, safe='')}/{schema}/{table}"


def change_extra(counts: Mapping[str, Any], *, dag_id: str, run_id: str, task_id: str,
                 operation: str) -> dict[str, Any] | None:
    """The asset event's extra for a task's counts; None when the task changed nothing."""
    numbers = {key: int(counts.get(key) or 0) for key in COUNT_KEYS}
    if not any(numbers.values()):
        return None
    return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "operation": operation, **numbers}
