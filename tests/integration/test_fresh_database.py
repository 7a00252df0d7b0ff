"""A new user's first run is often a dry run, on a database where crmsync never ran: every DAG
that takes ``dry_run`` succeeds there, on both API profiles, says what it would do, and creates
nothing, not even its tables."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("env")

# Each DAG with the least conf a person would give it.
DRY_RUNS = {
    "crm_pull_customers": {},
    "crm_push_customers": {"customer_ids": [1, 2]},
    "crm_bidirectional_sync": {},
    "crm_revert_run": {"dag_run_id": "manual__2026-01-01T03:00:00+00:00"},
    "crm_resolve_conflicts": {"conflict_ids": [1], "keep": "local"},
    "crm_apply_crm_events": {},
    "crm_link_customers": {"links": [[1, "100001"]]},
}


def tables(pg) -> list[str]:
    with pg.connect() as conn:
        return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


def report_summary(dag_run) -> dict:
    from sqlalchemy import select

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        value = session.scalars(select(XComModel.value).where(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.task_id == "report",
            XComModel.key == "return_value")).one()
    return json.loads(value) if isinstance(value, str) else value


def test_the_dry_run_dags_are_all_here(dagbag):
    assert {dag_id for dag_id, dag in dagbag.dags.items() if "dry_run" in dag.params} == set(DRY_RUNS)


@pytest.mark.parametrize("dag_id", sorted(DRY_RUNS))
def test_a_dry_run_on_a_fresh_database_succeeds_reports_and_creates_nothing(pg, sandbox, run_dag, dag_id):
    sandbox.control.add_customers([{"Name": "Dana Levi", "Email": "dana@example.com"}, {"Name": "Beta Ltd"}])
    assert tables(pg) == []
    assert run_dag(dag_id, {**DRY_RUNS[dag_id], "dry_run": True}) == "success"
    states = {ti.task_id: str(ti.state) for ti in run_dag.last.get_task_instances()}
    assert set(states.values()) <= {"success", "skipped"}, states  # no task failed, none retried its way through
    summary = report_summary(run_dag.last)
    assert summary["dry_run"] is True and summary["status"] == "success"
    assert summary["message"].startswith("[dry run, nothing written]")
    if dag_id in ("crm_pull_customers", "crm_bidirectional_sync"):
        assert summary["fetched"] == 2 and summary["created"] == 2  # what a real run would write
    assert tables(pg) == []  # not even the schema
