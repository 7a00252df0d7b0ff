"""crm_export_changed_customers — an example of a DAG downstream of crmsync (paused until you unpause it).

Scheduled on the ``sumit_customers`` asset's events: it runs after any crmsync task that
changed customers (a pull, a push, the triggers' apply, a revert, a resolve), never after one
that changed nothing. It schedules on the alias the writing tasks declare,
``AssetAlias("crmsync_customers_changed")``, which needs no database address in this file; a
DAG of yours may name the asset itself instead (docs/near-real-time.md, "The `sumit_customers` asset out"). Each asset event names the run and task that
changed the table and their counts (``created``, ``updated``, ``vanished``, ``changed``); this
DAG writes the customers each of those runs changed, as they are now, to a CSV file in
``CRMSYNC_EXPORT_DIR`` (default ``$AIRFLOW_HOME/crmsync_exports``). Put a dbt build or your
warehouse load in its place.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pendulum

from airflow.sdk import DAG, AssetAlias, task

from crmsync.airflow_side import deployment
from crmsync.core import assets
from crmsync.db import sql

with DAG(
    dag_id="crm_export_changed_customers",
    description="Example downstream of the sumit_customers asset: export the customers a crmsync run changed",
    doc_md=__doc__,
    schedule=AssetAlias(assets.CHANGES_ALIAS_NAME),
    start_date=pendulum.datetime(2026, 1, 1, tz=deployment.SYNC_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    tags=["crmsync", "example", "downstream"],
) as dag:

    @task
    def export_changed_customers(triggering_asset_events: Any = None) -> dict[str, Any]:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        folder = Path(os.environ.get("CRMSYNC_EXPORT_DIR") or Path(os.environ.get("AIRFLOW_HOME", ".")) / "crmsync_exports")
        folder.mkdir(parents=True, exist_ok=True)
        runs = {(e.extra["dag_id"], e.extra["run_id"]): e.extra for events in (triggering_asset_events or {}).values()
                for e in events if "dag_id" in (e.extra or {})}
        written, total = [], 0
        conn = PostgresHook(postgres_conn_id=deployment.POSTGRES_CONN_ID).get_conn()
        try:
            for (dag_id, run_id), extra in sorted(runs.items()):
                with conn.cursor() as cur:
                    cur.execute(sql.load("export_run_customers"), {"dag_id": dag_id, "dag_run_id": run_id})
                    header = [column.name for column in cur.description]
                    rows = cur.fetchall()
                name = folder / f"{dag_id}__{run_id.replace(':', '-').replace('+', '_')}.csv"
                with open(name, "w", newline="", encoding="utf-8") as out:
                    writer = csv.writer(out)
                    writer.writerow(header)
                    writer.writerows(rows)
                print(f"{dag_id} {run_id} ({extra.get('operation')}: created {extra.get('created')}, updated "
                      f"{extra.get('updated')}, vanished {extra.get('vanished')}, changed {extra.get('changed')}): "
                      f"{len(rows)} customers written to {name}")
                written.append(str(name))
                total += len(rows)
        finally:
            conn.close()
        return {"files": written, "customers": total}

    export_changed_customers()
