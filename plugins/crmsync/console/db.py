"""The customers database, for the console's pages and the trigger receiver (api-server side)."""

from __future__ import annotations

from typing import Any


def connect() -> Any:
    """A new psycopg connection through the postgres provider's hook (connection crm_postgres)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from crmsync.airflow_side import deployment

    return PostgresHook(postgres_conn_id=deployment.POSTGRES_CONN_ID).get_conn()
