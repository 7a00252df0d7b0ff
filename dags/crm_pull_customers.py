"""crm_pull_customers — bring every SUMIT customer into sumit_customers (manual trigger).

Creates or updates, never duplicates. A complete pull flags linked customers the CRM no
longer lists (``metadata.crm_missing_since``) and never deletes them.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG

from crmsync import deployment
from crmsync.notifiers import CrmSyncNotifier
from crmsync.operators.report import CrmSyncReportOperator
from crmsync.operators.sync import PrepareCustomersTableOperator, SumitPullOperator
from crmsync.params import (
    conflict_policy_param,
    dry_run_param,
    fail_on_partial_param,
    full_resync_param,
    max_record_attempts_param,
    max_reject_ratio_param,
    min_rejects_to_fail_param,
)

with DAG(
    dag_id="crm_pull_customers",
    description="Pull every SUMIT CRM customer into PostgreSQL (create or update, never duplicate)",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz=deployment.SYNC_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=deployment.DEFAULT_ARGS,
    render_template_as_native_obj=True,
    on_failure_callback=CrmSyncNotifier(),  # a run that failed before its report could say so
    tags=["crmsync", "sumit", "pull"],
    params={
        "dry_run": dry_run_param(),
        "conflict_policy": conflict_policy_param(),
        "full_resync": full_resync_param(),
        "max_record_attempts": max_record_attempts_param(),
        "max_reject_ratio": max_reject_ratio_param(),
        "min_rejects_to_fail": min_rejects_to_fail_param(),
        "fail_on_partial": fail_on_partial_param(),
    },
) as dag:
    connections = {"sumit_conn_id": deployment.SUMIT_CONN_ID, "postgres_conn_id": deployment.POSTGRES_CONN_ID}

    prepare_customers_table = PrepareCustomersTableOperator(
        task_id="prepare_customers_table", dry_run="{{ params.dry_run }}", **connections
    )
    pull_from_crm = SumitPullOperator(
        task_id="pull_from_crm",
        pool=deployment.SUMIT_POOL,
        dry_run="{{ params.dry_run }}",
        conflict_policy="{{ params.conflict_policy }}",
        full_resync="{{ params.full_resync }}",
        max_record_attempts="{{ params.max_record_attempts }}",
        **connections,
    )
    report = CrmSyncReportOperator(
        task_id="report",
        operation="pull",
        phase_task_ids=["pull_from_crm"],
        dry_run="{{ params.dry_run }}",
        fail_on_partial="{{ params.fail_on_partial }}",
        max_reject_ratio="{{ params.max_reject_ratio }}",
        min_rejects_to_fail="{{ params.min_rejects_to_fail }}",
        on_success_callback=CrmSyncNotifier(),  # success, or warning when records were rejected
        on_failure_callback=CrmSyncNotifier(),
        **connections,
    )

    prepare_customers_table >> pull_from_crm >> report
