"""A SUMIT that rate limits (HTTP 429 with Retry-After beyond R requests a second), met by a
push through Airflow: the task's request budget (crmsync.sumit.budget) slows every pusher down to
what SUMIT accepts, so nothing fails, nothing is sent twice and few calls are refused.

The suite's connection retries fast (``max_attempts`` 4, ``backoff_max`` 0.3 s): the budget,
not more tries, is what gets every customer through.
"""

from __future__ import annotations

import time

import pytest

from conftest import PUSH_PATHS, lost_and_duplicated
from test_dags import ensure_schema, last_run, rows

pytestmark = pytest.mark.usefixtures("env")

COUNT = 100  # customers pushed
RATE = 20  # requests per second SUMIT accepts


def insert_customers(pg, count: int) -> list[int]:
    with pg.connect() as conn:
        return [r[0] for r in conn.execute(
            "INSERT INTO sumit_customers (name, email, city) SELECT 'Rate ' || i || ' בע\"מ', "
            "'r' || i || '@example.co.il', 'חיפה' FROM generate_series(1, %s) AS i ORDER BY i RETURNING id",
            [count]).fetchall()]


def run_push(dagbag, conf: dict) -> tuple[str, float]:
    """(final state, seconds the push task ran): the task's own time, without Airflow's start-up."""
    dag = dagbag.get_dag("crm_push_customers")
    dag_run = dag.test(run_conf={**dagbag.crmsync_param_defaults["crm_push_customers"], **conf})
    push = dag_run.get_task_instance("push_to_crm")
    return str(dag_run.state), (push.end_date - push.start_date).total_seconds()


def test_a_rate_limited_push_slows_down_instead_of_failing(pg, sandbox, dagbag, profile, reliability, capfd):
    ensure_schema(pg)
    ids = insert_customers(pg, COUNT)
    sandbox.control.set_faults(rate_limit=RATE)
    started = time.monotonic()
    state, push_seconds = run_push(dagbag, {"customer_ids": ids})
    wall = time.monotonic() - started

    output = "".join(capfd.readouterr())
    statuses = [r["status"] for r in sandbox.control.requests()]  # every API call: pushes and any listing
    pushes = [r["status"] for r in sandbox.control.requests() if r["path"] in PUSH_PATHS[profile]]
    names = [c["Name"] for c in sandbox.control.customers()]
    linked = rows(pg, "SELECT count(*) FROM sumit_customers WHERE sumit_customer_id IS NOT NULL")[0][0]
    unlinked_in_crm, duplicated = lost_and_duplicated(pg, sandbox)
    lost = (COUNT - linked) + unlinked_in_crm  # local customers SUMIT lacks, SUMIT customers nobody links to
    refused = statuses.count(429) / max(1, len(statuses))
    run = last_run(pg)
    reliability("SUMIT rate limit (429 + Retry-After)", outcome=f"run {state}, {run[8]} failed; paced to the limit",
                lost=lost, duplicated=duplicated)

    assert state == "success"
    assert run[1] == "success" and run[7] == COUNT and run[8] == 0, run  # pushed, failed
    assert lost == 0 and duplicated == 0
    assert len(names) == len(set(names)) == COUNT  # every customer in SUMIT exactly once
    assert pushes.count(200) == COUNT and set(statuses) <= {200, 429}
    assert refused <= 0.20, f"{statuses.count(429)} of {len(statuses)} calls were refused"
    assert push_seconds <= 1.5 * COUNT / RATE, f"the push took {push_seconds:.1f} s (whole run {wall:.1f} s)"
    assert "SUMIT is rate limiting (HTTP 429, Retry-After 1 s): sending at most 6 requests at once" in output
    assert output.count("SUMIT is rate limiting") < 10  # once per change of the limit, not per request
