"""crm_resolve_conflicts — keep one side of recorded conflicts (manual trigger).

Trigger with ``{"conflict_ids": [12], "keep": "local"}`` (or ``"keep": "crm"``). A conflict is
a customer both sides changed since the last sync: the pull's policy picked a winner and
recorded both versions in crm_sync_conflicts. Keeping the winner writes nothing: the conflict
is marked resolved. Keeping the other side writes its values into the customer's row, for a
row that still holds the winner's (one changed since is left alone and named; its conflict
stays open), then pushes exactly the rewritten customers, so SUMIT holds the same. The link to
SUMIT is never written. A customer's newest open conflict settles its older ones too; an older
one named alone is refused. The resolve is one transaction, journaled as direction
``resolve``. Unknown or already resolved conflicts are named; a request that names no open
conflict is refused before anything is written. See docs/conflicts.md.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG

from crmsync.airflow_side import deployment
from crmsync.airflow_side.notifiers import CrmSyncNotifier
from crmsync.airflow_side.params import conflict_ids_param, dry_run_param, keep_param
from crmsync.operators.conflicts import ResolveConflictsOperator, SumitPushResolvedOperator
from crmsync.operators.report import CrmSyncReportOperator
from crmsync.operators.sync import PrepareCustomersTableOperator

with DAG(
    dag_id="crm_resolve_conflicts",
    description="Keep the CRM's or the local side of recorded conflicts, and push it (manual)",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz=deployment.SYNC_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=deployment.DEFAULT_ARGS,
    render_template_as_native_obj=True,
    on_failure_callback=CrmSyncNotifier(),  # a run that failed before its report could say so
    tags=["crmsync", "sumit", "conflicts"],
    params={
        "conflict_ids": conflict_ids_param(),
        "keep": keep_param(),
        "dry_run": dry_run_param(),
    },
) as dag:
    connections = {"sumit_conn_id": deployment.SUMIT_CONN_ID, "postgres_conn_id": deployment.POSTGRES_CONN_ID}

    prepare_customers_table = PrepareCustomersTableOperator(
        task_id="prepare_customers_table", dry_run="{{ params.dry_run }}", **connections
    )
    resolve_conflicts = ResolveConflictsOperator(
        task_id="resolve_conflicts", conflict_ids_param="conflict_ids", keep_param="keep",
        dry_run="{{ params.dry_run }}", **connections
    )
    push_resolved = SumitPushResolvedOperator(
        task_id="push_resolved", pool=deployment.SUMIT_POOL, dry_run="{{ params.dry_run }}", **connections
    )
    report = CrmSyncReportOperator(
        task_id="report",
        operation="resolve",
        phase_task_ids=["resolve_conflicts", "push_resolved"],
        dry_run="{{ params.dry_run }}",
        # Conflicts left alone (their row changed since) or not resolvable (unknown, already
        # resolved, superseded) are named, not rejects: they make the run a warning, never red.
        # A refusal (no named conflict open) or a failed task is red.
        max_reject_ratio=1.0,
        on_success_callback=CrmSyncNotifier(),  # success, or warning when conflicts were left alone
        on_failure_callback=CrmSyncNotifier(),
        **connections,
    )

    prepare_customers_table >> resolve_conflicts >> push_resolved >> report
