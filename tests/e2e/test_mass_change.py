"""The mass-change guard in a live Airflow: a pull whose plan would flag every customer as
vanished (an empty listing) writes nothing and waits for a person; the answer is given through
the REST API v2 (the UI's Required Actions use the same endpoint). Rejected: nothing written,
the run red, the failure notification sent. Approved: the plan applied exactly as planned.
Approved in advance (``approve_mass_change``): no wait. A push over the limit waits too."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import NOTIFICATIONS
from .live_helpers import PULL_DAG, PUSH_DAG, add_customers

CUSTOMERS = 1000


def _hitl(api, dag_id: str, run_id: str, task_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"


def _answer(api, dag_id: str, run_id: str, task_id: str, option: str) -> None:
    api.ok("PATCH", _hitl(api, dag_id, run_id, task_id), json={"chosen_options": [option]})


def _table(pg) -> dict:
    with pg.connect() as conn:
        return {
            "flagged": conn.execute("SELECT count(*) FROM sumit_customers "
                                    "WHERE metadata ? 'crm_missing_since'").fetchone()[0],
            "customers": conn.execute("SELECT count(*) FROM sumit_customers").fetchone()[0],
            "journal": conn.execute("SELECT count(*) FROM crm_sync_history").fetchone()[0],
            "digest": conn.execute("SELECT md5(string_agg(c::text, '|' ORDER BY id)) FROM sumit_customers c").fetchone()[0],
        }


def _journal_of(pg, run_id: str) -> int:
    with pg.connect() as conn:
        return conn.execute("SELECT count(*) FROM crm_sync_history WHERE dag_run_id = %s", (run_id,)).fetchone()[0]


def _plan(pg, run_id: str) -> tuple[str, dict]:
    with pg.connect() as conn:
        return conn.execute("SELECT status, plan FROM crm_sync_plans WHERE dag_run_id = %s", (run_id,)).fetchone()


def _notifications(run_id: str) -> list[dict]:
    if not NOTIFICATIONS.exists():
        return []
    return [n for n in map(json.loads, NOTIFICATIONS.read_text().splitlines()) if n.get("run_id") == run_id]


def _wait_for_question(api, dag_id: str, run_id: str, task_id: str) -> None:
    api.wait_for_task(dag_id, run_id, task_id, {"awaiting_input"})
    # Airflow 3.3: an answer that reaches the scheduler before it has processed the executor's
    # report of the task pausing (one loop, well under a second) is taken for a finished task in
    # the wrong state, and the task is failed. A person never answers that fast; a script should.
    time.sleep(8)  # 3 s was not always enough on a loaded 2-core machine


def _waiting_pull(api, live) -> str:
    run_id = api.trigger(PULL_DAG, {})["dag_run_id"]
    _wait_for_question(api, PULL_DAG, run_id, "approve_mass_change")
    return run_id


@pytest.fixture(scope="module")
def thousand_pulled(api, live_airflow, customers_table):
    """1,000 customers pulled into an empty table: new customers never wait."""
    with customers_table.connect() as conn:
        conn.execute("TRUNCATE sumit_customers, crm_sync_changes, crm_sync_created, crm_sync_plans, crm_sync_listing")
    live_airflow.sandbox.control.reset([{"Name": f"Mass {i}", "Email": f"mass{i}@example.co.il"}
                                        for i in range(CUSTOMERS)])
    api.unpause(PULL_DAG)
    run_id = api.trigger(PULL_DAG, {})["dag_run_id"]
    run = api.wait_for_run(PULL_DAG, run_id)
    assert run["state"] == "success", api.task_states(PULL_DAG, run_id)
    assert api.task_states(PULL_DAG, run_id)["approve_mass_change"] == "skipped"
    assert _journal_of(customers_table, run_id) == CUSTOMERS  # one journal row per created customer
    yield
    live_airflow.sandbox.control.reset([])
    with customers_table.connect() as conn:
        conn.execute("TRUNCATE sumit_customers, crm_sync_changes, crm_sync_created, crm_sync_plans, crm_sync_listing")


def test_an_empty_listing_waits_and_rejected_writes_nothing(thousand_pulled, api, live_airflow, customers_table):
    live_airflow.sandbox.control.reset([])  # the CRM answers an empty listing
    before = _table(customers_table)
    run_id = _waiting_pull(api, live_airflow)

    assert _table(customers_table) == before  # waiting: nothing flagged, nothing journaled
    status, plan = _plan(customers_table, run_id)
    assert (status, plan["existing"], plan["vanished"]) == ("awaiting_approval", CUSTOMERS, CUSTOMERS)
    detail = api.ok("GET", _hitl(api, PULL_DAG, run_id, "approve_mass_change"))
    assert "flag 1,000 of the 1,000 existing customers" in detail["body"], detail
    assert detail["options"] == ["Approve", "Reject"]

    _answer(api, PULL_DAG, run_id, "approve_mass_change", "Reject")
    run = api.wait_for_run(PULL_DAG, run_id)
    states = api.task_states(PULL_DAG, run_id)
    assert run["state"] == "failed", states
    assert states["approve_mass_change"] == "failed" and states["apply_approved_plan"] == "upstream_failed"
    assert _table(customers_table) == before
    assert _plan(customers_table, run_id)[0] == "rejected"
    [note] = _notifications(run_id)
    assert note["type"] == "failure" and "not applied" in note["body"], note


def test_an_approved_plan_is_applied_exactly_as_planned(thousand_pulled, api, live_airflow, customers_table):
    live_airflow.sandbox.control.reset([])
    run_id = _waiting_pull(api, live_airflow)
    assert _table(customers_table)["flagged"] == 0
    _answer(api, PULL_DAG, run_id, "approve_mass_change", "Approve")
    run = api.wait_for_run(PULL_DAG, run_id)
    assert run["state"] == "success", api.task_states(PULL_DAG, run_id)
    status, plan = _plan(customers_table, run_id)
    after = _table(customers_table)
    assert status == "applied"
    assert after["flagged"] == plan["vanished"] == CUSTOMERS
    assert _journal_of(customers_table, run_id) == CUSTOMERS
    with customers_table.connect() as conn:
        row = conn.execute("SELECT vanished, changed, status FROM crm_sync_runs WHERE dag_run_id = %s",
                           (run_id,)).fetchone()
    assert row == (CUSTOMERS, CUSTOMERS, "success")


def test_approved_in_advance_does_not_wait(thousand_pulled, api, live_airflow, customers_table):
    # The CRM lists them all again (unflagging is no mass change), then loses them again.
    live_airflow.sandbox.control.reset([{"Name": f"Mass {i}", "Email": f"mass{i}@example.co.il"}
                                        for i in range(CUSTOMERS)])
    run_id = api.trigger(PULL_DAG, {})["dag_run_id"]
    assert api.wait_for_run(PULL_DAG, run_id)["state"] == "success", api.task_states(PULL_DAG, run_id)
    # (the CRM gave the customers new ids: the old rows stay flagged, the new ones are created)
    live_airflow.sandbox.control.reset([])
    run_id = api.trigger(PULL_DAG, {"approve_mass_change": True})["dag_run_id"]
    run = api.wait_for_run(PULL_DAG, run_id)
    states = api.task_states(PULL_DAG, run_id)
    assert run["state"] == "success", states
    assert states["approve_mass_change"] == "skipped"
    assert _plan(customers_table, run_id) is None
    assert _journal_of(customers_table, run_id) >= CUSTOMERS


def test_a_push_over_the_limit_waits_and_rejected_sends_nothing(thousand_pulled, api, live_airflow, customers_table):
    with customers_table.connect() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM sumit_customers ORDER BY id LIMIT 3")]
    sent_before = len([r for r in live_airflow.sandbox.control.requests() if "update" in r.get("path", "")])
    api.unpause(PUSH_DAG)
    run_id = api.trigger(PUSH_DAG, {"customer_ids": ids, "max_push_without_approval": 2})["dag_run_id"]
    _wait_for_question(api, PUSH_DAG, run_id, "approve_mass_push")
    detail = api.ok("GET", _hitl(api, PUSH_DAG, run_id, "approve_mass_push"))
    assert "push 3 customers" in detail["body"], detail
    _answer(api, PUSH_DAG, run_id, "approve_mass_push", "Reject")
    assert api.wait_for_run(PUSH_DAG, run_id)["state"] == "failed"
    sent_after = len([r for r in live_airflow.sandbox.control.requests() if "update" in r.get("path", "")])
    assert sent_after == sent_before
    assert _journal_of(customers_table, run_id) == 0


def test_a_push_over_the_limit_approved_sends_them_all_and_closes_its_plan(thousand_pulled, api, live_airflow,
                                                                          customers_table):
    # The tests above emptied the sandbox, which then hands out its ids from the start again (SUMIT
    # never reuses one): move the stale links of the customers it lost out of the way first.
    with customers_table.connect() as conn:
        conn.execute("UPDATE sumit_customers SET sumit_customer_id = 'lost-' || sumit_customer_id "
                     "WHERE metadata ? 'crm_missing_since' AND sumit_customer_id NOT LIKE 'lost-%'")
    ids = add_customers(customers_table, "Approved Push 1", "Approved Push 2", "Approved Push 3")  # new: created
    api.unpause(PUSH_DAG)
    run_id = api.trigger(PUSH_DAG, {"customer_ids": ids, "max_push_without_approval": 2})["dag_run_id"]
    _wait_for_question(api, PUSH_DAG, run_id, "approve_mass_push")
    assert _plan(customers_table, run_id)[0] == "awaiting_approval"
    _answer(api, PUSH_DAG, run_id, "approve_mass_push", "Approve")
    assert api.wait_for_run(PUSH_DAG, run_id)["state"] == "success", api.task_states(PUSH_DAG, run_id)
    with customers_table.connect() as conn:
        pushed, message = conn.execute("SELECT pushed, message FROM crm_sync_runs WHERE dag_run_id = %s",
                                       (run_id,)).fetchone()
    assert pushed == 3, message
    assert {"Approved Push 1", "Approved Push 2", "Approved Push 3"} <= {
        c["Name"] for c in live_airflow.sandbox.control.customers()}
    # decided: no longer listed as waiting (the console's Mass changes page reads this)
    assert _plan(customers_table, run_id)[0] == "applied"
