"""crm_bidirectional_sync — pull from SUMIT, then push what changed locally.

Runs daily at 03:00 Asia/Jerusalem (``CRMSYNC_SYNC_CRON`` / ``CRMSYNC_SYNC_TIMEZONE``
override it) and on demand. The pull never overwrites a local edit with an unchanged CRM
copy; when both sides changed, ``conflict_policy`` decides and the conflict is recorded.
The push first retries customers whose last push failed (the queue in crm_sync_errors),
then sends customers changed locally since their last sync (or never synced), limited to
``customer_ids`` when given. Customers the CRM stopped listing are never pushed back.
``retry_failed_only`` skips the pull and runs just the retry queue.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG, CronTriggerTimetable

from crmsync import deployment
from crmsync.notifiers import CrmSyncNotifier
from crmsync.operators.report import CrmSyncReportOperator
from crmsync.operators.sync import PrepareCustomersTableOperator, SumitPullOperator, SumitPushOperator
from crmsync.params import (
    conflict_policy_param,
    customer_ids_param,
    dry_run_param,
    fail_on_partial_param,
    full_resync_param,
    max_record_attempts_param,
    max_reject_ratio_param,
    min_rejects_to_fail_param,
    retry_failed_only_param,
)

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
        **connections,
    )
    push_changed = SumitPushOperator(
        task_id="push_changed",
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
        phase_task_ids=["pull_from_crm", "push_changed"],
        dry_run="{{ params.dry_run }}",
        fail_on_partial="{{ params.fail_on_partial }}",
        max_reject_ratio="{{ params.max_reject_ratio }}",
        min_rejects_to_fail="{{ params.min_rejects_to_fail }}",
        on_success_callback=CrmSyncNotifier(),  # success, or warning when records were rejected
        on_failure_callback=CrmSyncNotifier(),
        **connections,
    )

    prepare_customers_table >> pull_from_crm >> push_changed >> report
