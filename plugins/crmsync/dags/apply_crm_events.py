"""crm_apply_crm_events — apply SUMIT's triggers: customers changed in SUMIT, in seconds.

SUMIT posts a trigger to crmsync's receiver (``/crmsync/webhooks/sumit/<token>`` on the
api-server) when a customer of the subscribed folder changes; the receiver stores it in
``crm_inbox`` and asks for a run of this DAG unless one is already queued, so a burst of
triggers becomes one run (or a few), never one per trigger. The run reads each named customer
fresh from SUMIT (the trigger is a hint, not the data), merges it with the pull's three-way
merge, journal and error queue, and flags deleted or archived ones as missing. Triggers stay
in the inbox until applied: a failed run loses none. A burst that amounts to a mass change
(``max_change_ratio``, ``min_mass_change``) is held back, not written: the nightly sync's pull
plans it and waits for a person's approval. Needs the ``rest`` API profile.

The nightly crm_bidirectional_sync still runs: it catches whatever a lost trigger missed.
Start this DAG by hand to apply what waits (for example after it was paused).
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG

from crmsync.airflow_side import deployment
from crmsync.airflow_side.notifiers import CrmSyncNotifier
from crmsync.airflow_side.params import (
    conflict_policy_param,
    dry_run_param,
    fail_on_partial_param,
    max_change_ratio_param,
    max_events_param,
    max_record_attempts_param,
    max_reject_ratio_param,
    min_mass_change_param,
    min_rejects_to_fail_param,
)
from crmsync.operators.events import ApplyCrmEventsOperator
from crmsync.operators.report import CrmSyncReportOperator

with DAG(
    dag_id="crm_apply_crm_events",
    description="Apply SUMIT's triggers from crm_inbox: the customers they name, read fresh and merged",
    doc_md=__doc__,
    schedule=None,  # runs are asked for by the receiver
    start_date=pendulum.datetime(2026, 1, 1, tz=deployment.SYNC_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=deployment.DEFAULT_ARGS,
    render_template_as_native_obj=True,
    on_failure_callback=CrmSyncNotifier(),
    tags=["crmsync", "sumit", "triggers"],
    params={
        "max_events": max_events_param(),
        "dry_run": dry_run_param(),
        "conflict_policy": conflict_policy_param(),
        "max_record_attempts": max_record_attempts_param(),
        "max_reject_ratio": max_reject_ratio_param(),
        "min_rejects_to_fail": min_rejects_to_fail_param(),
        "fail_on_partial": fail_on_partial_param(),
        "max_change_ratio": max_change_ratio_param(),
        "min_mass_change": min_mass_change_param(),
    },
) as dag:
    connections = {"sumit_conn_id": deployment.SUMIT_CONN_ID, "postgres_conn_id": deployment.POSTGRES_CONN_ID}

    apply_crm_events = ApplyCrmEventsOperator(
        task_id="apply_crm_events",
        pool=deployment.SUMIT_POOL,
        dry_run="{{ params.dry_run }}",
        max_events="{{ params.max_events }}",
        conflict_policy="{{ params.conflict_policy }}",
        max_record_attempts="{{ params.max_record_attempts }}",
        max_change_ratio="{{ params.max_change_ratio }}",
        min_mass_change="{{ params.min_mass_change }}",
        **connections,
    )
    report = CrmSyncReportOperator(
        task_id="report",
        operation="events",
        phase_task_ids=["apply_crm_events"],
        dry_run="{{ params.dry_run }}",
        fail_on_partial="{{ params.fail_on_partial }}",
        max_reject_ratio="{{ params.max_reject_ratio }}",
        min_rejects_to_fail="{{ params.min_rejects_to_fail }}",
        on_failure_callback=CrmSyncNotifier(),
        **connections,
    )

    apply_crm_events >> report
