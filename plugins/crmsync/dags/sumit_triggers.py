"""crm_sumit_triggers — subscribe crmsync's receiver to SUMIT's triggers, unsubscribe it, or show it.

``action``: ``subscribe`` asks SUMIT (``/triggers/triggers/subscribe/``) to post the chosen
``trigger_types`` of the customers folder (the sumit connection's ``customers_folder``) to
the receiver's public URL, built from the ``crmsync_webhook`` connection (``public_url`` and
the token); ``unsubscribe`` stops every trigger to that URL; ``show`` lists what crmsync
subscribed (SUMIT has no call that lists subscriptions) and the inbox's state. Triggers need
SUMIT's ``rest`` profile and a SUMIT plan that includes them. The token never appears in a
log, XCom or table: the URL is shown as ``.../crmsync/webhooks/sumit/***``.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG

from crmsync.airflow_side import deployment
from crmsync.airflow_side.params import trigger_types_param, trigger_view_param, triggers_action_param
from crmsync.operators.events import SumitTriggersOperator

with DAG(
    dag_id="crm_sumit_triggers",
    description="Subscribe, unsubscribe or show SUMIT's triggers to crmsync's receiver",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz=deployment.SYNC_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={**deployment.DEFAULT_ARGS, "retries": 0},  # a refused subscription does not get better
    render_template_as_native_obj=True,
    tags=["crmsync", "sumit", "triggers"],
    params={
        "action": triggers_action_param(),
        "trigger_types": trigger_types_param(),
        "view": trigger_view_param(),
    },
) as dag:
    SumitTriggersOperator(
        task_id="manage_triggers",
        action="{{ params.action }}",
        trigger_types="{{ params.trigger_types }}",
        view="{{ params.view }}",
        sumit_conn_id=deployment.SUMIT_CONN_ID,
        postgres_conn_id=deployment.POSTGRES_CONN_ID,
    )
