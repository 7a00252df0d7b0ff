"""crm_link_customers — a person's match decisions (manual; the console's Matches page runs it).

When matching (every pull, before anything is created) finds a customer with several candidates
on the other side (two CRM customers share an e-mail, two local rows share a tax id), the whole
group waits for a person in ``crm_sync_matches``. This DAG applies what the person decided:

- ``links``: pairs ``[local id, CRM id]`` that are the same customer. The local row gets the CRM
  id; blanks are filled both ways (SUMIT's by a push, as an update); fields filled differently
  on both sides are a conflict ``conflict_policy`` decides, recorded in crm_sync_conflicts.
- ``separate``: ids of held records (crm_sync_matches.id) that are different customers from
  their candidates: they cross as new records at the next sync and are never proposed again.
- ``unlink``: local ids whose CRM id is removed; the pair is never matched again automatically.

All or nothing: a pair whose side is linked to someone else, or does not exist, refuses the
whole run with nothing written. ``dry_run`` checks and reports without writing.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG

from crmsync.airflow_side import deployment
from crmsync.airflow_side.notifiers import CrmSyncNotifier
from crmsync.airflow_side.params import (
    conflict_policy_param,
    dry_run_param,
    link_pairs_param,
    separate_param,
    unlink_param,
)
from crmsync.operators.link import LinkCustomersOperator, SumitPushLinkedOperator
from crmsync.operators.report import CrmSyncReportOperator
from crmsync.operators.sync import PrepareCustomersTableOperator

with DAG(
    dag_id="crm_link_customers",
    description="Link, separate or unlink customers matching held for a person (manual)",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz=deployment.SYNC_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=deployment.DEFAULT_ARGS,
    render_template_as_native_obj=True,
    on_failure_callback=CrmSyncNotifier(),  # a run that failed before its report could say so
    tags=["crmsync", "sumit", "link"],
    params={
        "links": link_pairs_param(),
        "separate": separate_param(),
        "unlink": unlink_param(),
        "conflict_policy": conflict_policy_param(),
        "dry_run": dry_run_param(),
    },
) as dag:
    connections = {"sumit_conn_id": deployment.SUMIT_CONN_ID, "postgres_conn_id": deployment.POSTGRES_CONN_ID}

    prepare_customers_table = PrepareCustomersTableOperator(
        task_id="prepare_customers_table", dry_run="{{ params.dry_run }}", **connections
    )
    link_customers = LinkCustomersOperator(
        task_id="link_customers", dry_run="{{ params.dry_run }}", conflict_policy="{{ params.conflict_policy }}",
        **connections,
    )
    push_linked = SumitPushLinkedOperator(
        task_id="push_linked", link_task_id="link_customers", pool=deployment.SUMIT_POOL,
        dry_run="{{ params.dry_run }}", **connections,
    )
    report = CrmSyncReportOperator(
        task_id="report",
        operation="link",
        phase_task_ids=["link_customers", "push_linked"],
        dry_run="{{ params.dry_run }}",
        on_success_callback=CrmSyncNotifier(),
        on_failure_callback=CrmSyncNotifier(),
        **connections,
    )

    prepare_customers_table >> link_customers >> push_linked >> report
