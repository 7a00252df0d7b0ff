"""crm_revert_run — undo one run's local changes (manual trigger).

Trigger with ``{"dag_run_id": "<the run to undo>"}``. Restores the values that run's pull
changed in sumit_customers (or that a revert restored: a revert can be undone too), read from
the change journal (crm_sync_changes), for customers nobody changed since; the others are
named in the summary and left alone. Customers the run created are kept, and no customer's
link to SUMIT is undone. The restore is one transaction, journaled as direction ``revert``;
running it twice changes nothing the second time. An unknown ``dag_run_id``, or a run that
changed nothing a revert can restore, is refused before anything is written.

The restored customers now differ from what was last synced, so the next
``crm_bidirectional_sync`` pushes them; ``push_reverted`` pushes them at once. See docs/revert.md.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG

from crmsync.airflow_side import deployment
from crmsync.airflow_side.notifiers import CrmSyncNotifier
from crmsync.airflow_side.params import dry_run_param, push_reverted_param, revert_dag_run_id_param
from crmsync.operators.report import CrmSyncReportOperator
from crmsync.operators.revert import RevertRunOperator, SumitPushRestoredOperator
from crmsync.operators.sync import PrepareCustomersTableOperator

with DAG(
    dag_id="crm_revert_run",
    description="Undo one run's local changes from the change journal (manual)",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz=deployment.SYNC_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=deployment.DEFAULT_ARGS,
    render_template_as_native_obj=True,
    on_failure_callback=CrmSyncNotifier(),  # a run that failed before its report could say so
    tags=["crmsync", "sumit", "revert"],
    params={
        "dag_run_id": revert_dag_run_id_param(),
        "dry_run": dry_run_param(),
        "push_reverted": push_reverted_param(),
    },
) as dag:
    connections = {"sumit_conn_id": deployment.SUMIT_CONN_ID, "postgres_conn_id": deployment.POSTGRES_CONN_ID}

    prepare_customers_table = PrepareCustomersTableOperator(
        task_id="prepare_customers_table", dry_run="{{ params.dry_run }}", **connections
    )
    restore_values = RevertRunOperator(
        task_id="restore_values", dag_run_id_param="dag_run_id", dry_run="{{ params.dry_run }}", **connections
    )
    push_restored = SumitPushRestoredOperator(
        task_id="push_restored",
        pool=deployment.SUMIT_POOL,
        enabled="{{ params.push_reverted }}",
        dry_run="{{ params.dry_run }}",
        **connections,
    )
    report = CrmSyncReportOperator(
        task_id="report",
        operation="revert",
        phase_task_ids=["restore_values", "push_restored"],
        dry_run="{{ params.dry_run }}",
        # Customers left alone (changed since the run) are the revert working as meant, not
        # rejects: they make the run a warning, never red. A refusal or a failed task is red.
        max_reject_ratio=1.0,
        on_success_callback=CrmSyncNotifier(),  # success, or warning when customers were left alone
        on_failure_callback=CrmSyncNotifier(),
        **connections,
    )

    prepare_customers_table >> restore_values >> push_restored >> report
