"""crm_pull_customers — bring every SUMIT customer into sumit_customers (manual trigger).

Creates or updates, never duplicates. A complete pull flags linked customers the CRM no
longer lists (``metadata.crm_missing_since``) and never deletes them. Every change is
journaled in ``crm_sync_changes``.

The pull computes its whole plan before it writes. A mass change (more than
``max_change_ratio`` of the existing customers changed, blanked or vanished, and at least
``min_mass_change`` of them) writes nothing and waits at ``approve_mass_change`` for a
person (Required Actions in the UI); approved, ``apply_approved_plan`` applies exactly that
plan. ``approve_mass_change`` in the run's conf approves in advance.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG

from crmsync.airflow_side import deployment
from crmsync.airflow_side.notifiers import CrmSyncNotifier
from crmsync.airflow_side.params import (
    approve_mass_change_param,
    conflict_policy_param,
    dry_run_param,
    fail_on_partial_param,
    full_resync_param,
    max_change_ratio_param,
    max_record_attempts_param,
    match_keys_param,
    max_reject_ratio_param,
    min_mass_change_param,
    min_rejects_to_fail_param,
)
from crmsync.operators.approval import ApplyApprovedPlanOperator, ApprovePullPlanOperator
from crmsync.operators.report import CrmSyncReportOperator
from crmsync.operators.sync import PrepareCustomersTableOperator, SumitPullOperator

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
        "approve_mass_change": approve_mass_change_param(),
        "max_change_ratio": max_change_ratio_param(),
        "min_mass_change": min_mass_change_param(),
        "match_keys": match_keys_param(),
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
        approved_in_advance="{{ params.approve_mass_change }}",
        max_change_ratio="{{ params.max_change_ratio }}",
        min_mass_change="{{ params.min_mass_change }}",
        match_keys="{{ params.match_keys }}",
        **connections,
    )
    approve_mass_change = ApprovePullPlanOperator(
        task_id="approve_mass_change", dry_run="{{ params.dry_run }}", postgres_conn_id=deployment.POSTGRES_CONN_ID
    )
    apply_approved_plan = ApplyApprovedPlanOperator(task_id="apply_approved_plan", **connections)
    report = CrmSyncReportOperator(
        task_id="report",
        operation="pull",
        phase_task_ids=["pull_from_crm", "apply_approved_plan"],
        apply_task_id="apply_approved_plan",
        dry_run="{{ params.dry_run }}",
        fail_on_partial="{{ params.fail_on_partial }}",
        max_reject_ratio="{{ params.max_reject_ratio }}",
        min_rejects_to_fail="{{ params.min_rejects_to_fail }}",
        on_success_callback=CrmSyncNotifier(),  # success, or warning when records were rejected
        on_failure_callback=CrmSyncNotifier(),
        **connections,
    )

    prepare_customers_table >> pull_from_crm >> approve_mass_change >> apply_approved_plan >> report
