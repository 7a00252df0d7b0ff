"""crm_push_customers — send the chosen local customers to SUMIT (manual trigger).

Trigger with ``{"customer_ids": [1, 2, 3]}``. Ids that match no local customer are named in
the run summary and nothing is sent for them; a customer SUMIT refuses is recorded in
crm_sync_errors and the others go on. A push of more than ``max_push_without_approval``
customers waits at ``approve_mass_push`` for a person (``approve_mass_change`` approves in
advance). What was sent is journaled in ``crm_sync_changes``.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG, TriggerRule

from crmsync.airflow_side import deployment
from crmsync.airflow_side.notifiers import CrmSyncNotifier
from crmsync.airflow_side.params import (
    approve_mass_change_param,
    customer_ids_param,
    dry_run_param,
    fail_on_partial_param,
    max_push_without_approval_param,
    max_record_attempts_param,
    max_reject_ratio_param,
    min_rejects_to_fail_param,
)
from crmsync.operators.approval import ApproveMassPushOperator
from crmsync.operators.report import CrmSyncReportOperator
from crmsync.operators.sync import PrepareCustomersTableOperator, SumitPushOperator

with DAG(
    dag_id="crm_push_customers",
    description="Push chosen customers (local ids) from PostgreSQL to SUMIT CRM",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz=deployment.SYNC_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=deployment.DEFAULT_ARGS,
    render_template_as_native_obj=True,
    on_failure_callback=CrmSyncNotifier(),  # a run that failed before its report could say so
    tags=["crmsync", "sumit", "push"],
    params={
        "customer_ids": customer_ids_param(required=True),
        "dry_run": dry_run_param(),
        "max_record_attempts": max_record_attempts_param(),
        "max_reject_ratio": max_reject_ratio_param(),
        "min_rejects_to_fail": min_rejects_to_fail_param(),
        "fail_on_partial": fail_on_partial_param(),
        "approve_mass_change": approve_mass_change_param(),
        "max_push_without_approval": max_push_without_approval_param(),
    },
) as dag:
    connections = {"sumit_conn_id": deployment.SUMIT_CONN_ID, "postgres_conn_id": deployment.POSTGRES_CONN_ID}

    prepare_customers_table = PrepareCustomersTableOperator(
        task_id="prepare_customers_table", dry_run="{{ params.dry_run }}", **connections
    )
    approve_mass_push = ApproveMassPushOperator(
        task_id="approve_mass_push",
        dry_run="{{ params.dry_run }}",
        approved_in_advance="{{ params.approve_mass_change }}",
        customer_ids="{{ params.customer_ids }}",
        max_push_without_approval="{{ params.max_push_without_approval }}",
        postgres_conn_id=deployment.POSTGRES_CONN_ID,
    )
    push_to_crm = SumitPushOperator(
        task_id="push_to_crm",
        trigger_rule=TriggerRule.NONE_FAILED,  # also when no approval was needed (skipped)
        pool=deployment.SUMIT_POOL,
        customer_ids="{{ params.customer_ids }}",
        only_changed=False,
        dry_run="{{ params.dry_run }}",
        max_record_attempts="{{ params.max_record_attempts }}",
        **connections,
    )
    report = CrmSyncReportOperator(
        task_id="report",
        operation="push",
        phase_task_ids=["push_to_crm"],
        dry_run="{{ params.dry_run }}",
        fail_on_partial="{{ params.fail_on_partial }}",
        max_reject_ratio="{{ params.max_reject_ratio }}",
        min_rejects_to_fail="{{ params.min_rejects_to_fail }}",
        on_success_callback=CrmSyncNotifier(),  # success, or warning when records were rejected
        on_failure_callback=CrmSyncNotifier(),
        **connections,
    )

    prepare_customers_table >> approve_mass_push >> push_to_crm >> report
