"""crm_bidirectional_sync — pull from SUMIT, then push what changed locally.

Runs daily at 03:00 Asia/Jerusalem (``CRMSYNC_SYNC_CRON`` / ``CRMSYNC_SYNC_TIMEZONE``
override it) and on demand. The pull never overwrites a local edit with an unchanged CRM
copy; when both sides changed, ``conflict_policy`` decides and the conflict is recorded.
The push first retries customers whose last push failed (the queue in crm_sync_errors),
then sends customers changed locally since their last sync (or never synced), limited to
``customer_ids`` when given. Customers the CRM stopped listing are never pushed back.
``retry_failed_only`` skips the pull and runs just the retry queue. Every change is
journaled in ``crm_sync_changes``.

A mass change waits for a person before anything is written: a pull plan beyond
``max_change_ratio`` at ``approve_mass_change`` (then ``apply_approved_plan``), a push of more
than ``max_push_without_approval`` customers at ``approve_mass_push``.
``approve_mass_change`` in the run's conf approves both in advance.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG, CronTriggerTimetable, TriggerRule

from crmsync.airflow_side import deployment
from crmsync.airflow_side.notifiers import CrmSyncNotifier
from crmsync.airflow_side.params import (
    approve_mass_change_param,
    conflict_policy_param,
    customer_ids_param,
    dry_run_param,
    fail_on_partial_param,
    full_resync_param,
    max_change_ratio_param,
    max_push_without_approval_param,
    max_record_attempts_param,
    match_keys_param,
    max_reject_ratio_param,
    min_mass_change_param,
    min_rejects_to_fail_param,
    retry_failed_only_param,
)
from crmsync.operators.approval import ApplyApprovedPlanOperator, ApproveMassPushOperator, ApprovePullPlanOperator
from crmsync.operators.report import CrmSyncReportOperator
from crmsync.operators.sync import PrepareCustomersTableOperator, SumitPullOperator, SumitPushOperator

with DAG(
    dag_id="crm_bidirectional_sync",
    description="Pull SUMIT customers, then push local changes back (daily and on demand)",
    doc_md=__doc__,
    schedule=CronTriggerTimetable(deployment.SYNC_CRON, timezone=deployment.SYNC_TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=deployment.SYNC_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=deployment.DEFAULT_ARGS,
    render_template_as_native_obj=True,
    on_failure_callback=CrmSyncNotifier(),  # a run that failed before its report could say so
    tags=["crmsync", "sumit", "sync"],
    params={
        "customer_ids": customer_ids_param(required=False),
        "dry_run": dry_run_param(),
        "conflict_policy": conflict_policy_param(),
        "full_resync": full_resync_param(),
        "retry_failed_only": retry_failed_only_param(),
        "max_record_attempts": max_record_attempts_param(),
        "max_reject_ratio": max_reject_ratio_param(),
        "min_rejects_to_fail": min_rejects_to_fail_param(),
        "fail_on_partial": fail_on_partial_param(),
        "approve_mass_change": approve_mass_change_param(),
        "max_change_ratio": max_change_ratio_param(),
        "min_mass_change": min_mass_change_param(),
        "match_keys": match_keys_param(),
        "max_push_without_approval": max_push_without_approval_param(),
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
        skip="{{ params.retry_failed_only }}",
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
    approve_mass_push = ApproveMassPushOperator(
        task_id="approve_mass_push",
        trigger_rule=TriggerRule.NONE_FAILED,  # after a pull that needed no approval (apply skipped)
        dry_run="{{ params.dry_run }}",
        approved_in_advance="{{ params.approve_mass_change }}",
        customer_ids="{{ params.customer_ids }}",
        only_changed=True,
        retry_queue=True,
        max_push_without_approval="{{ params.max_push_without_approval }}",
        postgres_conn_id=deployment.POSTGRES_CONN_ID,
    )
    push_changed = SumitPushOperator(
        task_id="push_changed",
        trigger_rule=TriggerRule.NONE_FAILED,  # also when no approval was needed (skipped)
        pool=deployment.SUMIT_POOL,
        customer_ids="{{ params.customer_ids }}",
        only_changed=True,
        retry_queue=True,
        queue_only="{{ params.retry_failed_only }}",
        dry_run="{{ params.dry_run }}",
        max_record_attempts="{{ params.max_record_attempts }}",
        **connections,
    )
    report = CrmSyncReportOperator(
        task_id="report",
        operation="bidirectional",
        phase_task_ids=["pull_from_crm", "apply_approved_plan", "push_changed"],
        apply_task_id="apply_approved_plan",
        dry_run="{{ params.dry_run }}",
        fail_on_partial="{{ params.fail_on_partial }}",
        max_reject_ratio="{{ params.max_reject_ratio }}",
        min_rejects_to_fail="{{ params.min_rejects_to_fail }}",
        on_success_callback=CrmSyncNotifier(),  # success, or warning when records were rejected
        on_failure_callback=CrmSyncNotifier(),
        **connections,
    )

    (
        prepare_customers_table
        >> pull_from_crm
        >> approve_mass_change
        >> apply_approved_plan
        >> approve_mass_push
        >> push_changed
        >> report
    )
