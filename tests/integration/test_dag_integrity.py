"""Every DAG file imports, and the names, schedules and params others rely on are as documented."""

from __future__ import annotations

from datetime import datetime

import pytest
from airflow.sdk.exceptions import ParamValidationError


def test_dags_import_without_errors(dagbag):
    assert set(dagbag.dag_ids) == {"crm_pull_customers", "crm_push_customers", "crm_bidirectional_sync",
                                   "crm_revert_run", "crm_resolve_conflicts", "crm_apply_crm_events",
                                   "crm_sumit_triggers", "crm_export_changed_customers", "crm_link_customers"}


def test_bidirectional_runs_daily_at_three_in_jerusalem_one_at_a_time(dagbag):
    dag = dagbag.get_dag("crm_bidirectional_sync")
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 3 * * *", "Asia/Jerusalem")
    assert dag.catchup is False and dag.max_active_runs == 1


@pytest.mark.parametrize("dag_id", ["crm_pull_customers", "crm_push_customers", "crm_revert_run",
                                    "crm_resolve_conflicts", "crm_apply_crm_events", "crm_sumit_triggers",
                                    "crm_link_customers"])
def test_pull_and_push_are_manual_only(dagbag, dag_id):
    dag = dagbag.get_dag(dag_id)
    assert not dag.timetable.can_be_scheduled
    assert dag.max_active_runs == 1 and dag.catchup is False


def test_tasks_read_like_the_job(dagbag):
    assert [t.task_id for t in dagbag.get_dag("crm_bidirectional_sync").topological_sort()] == [
        "prepare_customers_table", "pull_from_crm", "approve_mass_change", "apply_approved_plan",
        "approve_mass_push", "push_changed", "report"]
    assert [t.task_id for t in dagbag.get_dag("crm_pull_customers").topological_sort()] == [
        "prepare_customers_table", "pull_from_crm", "approve_mass_change", "apply_approved_plan", "report"]
    assert [t.task_id for t in dagbag.get_dag("crm_push_customers").topological_sort()] == [
        "prepare_customers_table", "approve_mass_push", "push_to_crm", "report"]
    assert [t.task_id for t in dagbag.get_dag("crm_revert_run").topological_sort()] == [
        "prepare_customers_table", "restore_values", "push_restored", "report"]
    assert [t.task_id for t in dagbag.get_dag("crm_resolve_conflicts").topological_sort()] == [
        "prepare_customers_table", "resolve_conflicts", "push_resolved", "report"]
    assert set(dagbag.get_dag("crm_resolve_conflicts").tags) == {"crmsync", "sumit", "conflicts"}
    assert [t.task_id for t in dagbag.get_dag("crm_link_customers").topological_sort()] == [
        "prepare_customers_table", "link_customers", "push_linked", "report"]
    # near real time: the apply is the first task (no schema task before it: every second counts)
    assert [t.task_id for t in dagbag.get_dag("crm_apply_crm_events").topological_sort()] == [
        "apply_crm_events", "report"]
    assert [t.task_id for t in dagbag.get_dag("crm_sumit_triggers").topological_sort()] == ["manage_triggers"]
    assert dagbag.get_dag("crm_push_customers").task_dict["report"].trigger_rule == "all_done"


def test_the_approvals_are_airflows_human_in_the_loop_and_fail_the_run_when_rejected(dagbag):
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    for dag_id, task_id in (("crm_pull_customers", "approve_mass_change"), ("crm_push_customers", "approve_mass_push"),
                            ("crm_bidirectional_sync", "approve_mass_change"),
                            ("crm_bidirectional_sync", "approve_mass_push")):
        task = dagbag.get_dag(dag_id).task_dict[task_id]
        assert isinstance(task, ApprovalOperator) and task.fail_on_reject, (dag_id, task_id)
        assert task.response_timeout is not None  # no answer in time: the run fails, nothing written
    sync = dagbag.get_dag("crm_bidirectional_sync")
    # a pull that needed no approval skips both pull-side tasks: the push must still run
    assert sync.task_dict["approve_mass_push"].trigger_rule == "none_failed"
    assert sync.task_dict["push_changed"].trigger_rule == "none_failed"


def validated(dag, conf):
    """What Airflow does with a trigger's conf: the DAG's params updated with it, then validated."""
    import copy

    params = copy.deepcopy(dag.params)
    params.update(conf)
    return params.validate()


def test_params_validate_as_documented(dagbag):
    push = dagbag.get_dag("crm_push_customers")
    assert validated(push, {"customer_ids": [1, 2]}) == {
        "customer_ids": [1, 2], "dry_run": False, "fail_on_partial": False, "max_record_attempts": 5,
        "max_reject_ratio": 0.5, "min_rejects_to_fail": 10, "approve_mass_change": False,
        "max_push_without_approval": 1000}
    for bad in ({}, {"customer_ids": []}, {"customer_ids": ["1"]}, {"customer_ids": [0]}, {"customer_ids": [1], "dry_run": "no"},
                {"customer_ids": [1], "max_reject_ratio": 2}, {"customer_ids": [1], "max_record_attempts": 0},
                {"customer_ids": [1], "min_rejects_to_fail": 0}):
        with pytest.raises(ParamValidationError):
            validated(push, bad)
    sync = dagbag.get_dag("crm_bidirectional_sync")
    defaults = validated(sync, {})
    assert defaults["customer_ids"] == [] and defaults["conflict_policy"] == "newer_wins"
    assert defaults["full_resync"] is False and defaults["retry_failed_only"] is False
    assert (defaults["approve_mass_change"], defaults["max_change_ratio"], defaults["min_mass_change"],
            defaults["max_push_without_approval"]) == (False, 0.2, 100, 1000)
    for bad in ({"conflict_policy": "latest"}, {"max_change_ratio": 1.5}, {"min_mass_change": 0},
                {"approve_mass_change": "yes"}):
        with pytest.raises(ParamValidationError):
            validated(sync, bad)
    revert = dagbag.get_dag("crm_revert_run")
    assert validated(revert, {"dag_run_id": "x"}) == {"dag_run_id": "x", "dry_run": False, "push_reverted": False}
    for bad in ({}, {"dag_run_id": ""}, {"dag_run_id": "   "}, {"dag_run_id": 5}, {"dag_run_id": "x", "push_reverted": "yes"}):
        with pytest.raises(ParamValidationError):
            validated(revert, bad)
    resolve = dagbag.get_dag("crm_resolve_conflicts")
    assert validated(resolve, {"conflict_ids": [12], "keep": "local"}) == {
        "conflict_ids": [12], "keep": "local", "dry_run": False}
    assert validated(resolve, {"conflict_ids": [1, 2], "keep": "crm", "dry_run": True})["keep"] == "crm"
    for bad in ({}, {"conflict_ids": [12]}, {"keep": "crm"}, {"conflict_ids": [], "keep": "crm"},
                {"conflict_ids": [0], "keep": "crm"}, {"conflict_ids": ["12"], "keep": "crm"},
                {"conflict_ids": [12], "keep": "both"}, {"conflict_ids": [12], "keep": "CRM"},
                {"conflict_ids": [12], "keep": "local", "dry_run": "no"}):
        with pytest.raises(ParamValidationError):
            validated(resolve, bad)


def test_the_matching_params_validate_as_documented(dagbag):
    for dag_id in ("crm_pull_customers", "crm_bidirectional_sync"):
        dag = dagbag.get_dag(dag_id)
        assert validated(dag, {})["match_keys"] is None  # the Variable, the connection's extra, or the default
        assert validated(dag, {"match_keys": ["email", "phone"]})["match_keys"] == ["email", "phone"]
        assert validated(dag, {"match_keys": []})["match_keys"] == []  # matching off
        for bad in ({"match_keys": ["name"]}, {"match_keys": ["email", "email"]}, {"match_keys": "email"}):
            with pytest.raises(ParamValidationError):
                validated(dag, bad)
    link = dagbag.get_dag("crm_link_customers")
    assert validated(link, {"links": [[12, "40123"]]})["links"] == [[12, "40123"]]
    assert validated(link, {"separate": [3], "unlink": [4]}) == {
        "links": [], "separate": [3], "unlink": [4], "conflict_policy": "newer_wins", "dry_run": False}
    for bad in ({"links": [[12]]}, {"links": [["12", "40123"]]}, {"links": [[12, 40123]]}, {"links": [[0, "1"]]},
                {"links": [[12, "1", "2"]]}, {"separate": ["3"]}, {"unlink": [0]}, {"dry_run": "no"}):
        with pytest.raises(ParamValidationError):
            validated(link, bad)


def test_next_scheduled_run_is_three_oclock_jerusalem_time(dagbag):
    import pendulum

    from airflow.serialization.encoders import coerce_to_core_timetable

    timetable = coerce_to_core_timetable(dagbag.get_dag("crm_bidirectional_sync").timetable)
    after = pendulum.datetime(2026, 11, 25, 12, 0, tz="Asia/Jerusalem")
    info = timetable.next_dagrun_info(last_automated_data_interval=None,
                                          restriction=_restriction(after))
    start = pendulum.instance(info.run_after).in_timezone("Asia/Jerusalem")
    assert (start.hour, start.minute, start.day) == (3, 0, 26)


def _restriction(earliest: datetime):
    """From ``earliest`` on, whatever the clock says: with ``catchup=False`` the timetable starts from
    the latest fire time before now instead (after 03:00 in Jerusalem, today's), and the test would
    depend on when it runs."""
    from airflow.timetables.base import TimeRestriction

    return TimeRestriction(earliest=earliest, latest=None, catchup=True)


def test_every_task_that_calls_sumit_runs_in_the_sumit_pool(dagbag):
    """The pool caps SUMIT calls across runs and workers; the database-only tasks stay out of it."""
    in_pool = {(dag_id, t.task_id) for dag_id in dagbag.dag_ids for t in dagbag.get_dag(dag_id).tasks
               if t.pool == "sumit_api"}
    assert in_pool == {("crm_pull_customers", "pull_from_crm"), ("crm_push_customers", "push_to_crm"),
                       ("crm_bidirectional_sync", "pull_from_crm"), ("crm_bidirectional_sync", "push_changed"),
                       ("crm_revert_run", "push_restored"), ("crm_resolve_conflicts", "push_resolved"),
                       ("crm_apply_crm_events", "apply_crm_events"), ("crm_link_customers", "push_linked")}


DAG_IDS = ["crm_pull_customers", "crm_push_customers", "crm_bidirectional_sync", "crm_revert_run",
           "crm_resolve_conflicts", "crm_apply_crm_events", "crm_link_customers"]


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_dag_explains_itself_in_the_ui(dagbag, dag_id):
    """Docs, tags and owner are what the UI shows beside a DAG; a run's summary is the report's XCom."""
    dag = dagbag.get_dag(dag_id)
    assert dag.doc_md and dag.doc_md.lstrip().startswith(f"{dag_id} — ")
    assert dag.description
    assert {"crmsync", "sumit"} <= set(dag.tags)
    assert {t.owner for t in dag.tasks} == {"crmsync"}
    assert dag.task_dict["report"].do_xcom_push  # the run summary (counts, status, message) in the UI


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_dag_notifies_how_its_runs_went(dagbag, dag_id):
    from crmsync.airflow_side.notifiers import CrmSyncNotifier

    dag = dagbag.get_dag(dag_id)
    report = dag.task_dict["report"]
    assert isinstance(dag.on_failure_callback, CrmSyncNotifier)
    if dag_id == "crm_apply_crm_events":  # runs many times a day: only a failure is worth a message
        assert not report.on_success_callback
    else:
        assert [type(c) for c in report.on_success_callback] == [CrmSyncNotifier]  # task callbacks become lists
    assert [type(c) for c in report.on_failure_callback] == [CrmSyncNotifier]
    assert dag.on_success_callback is None  # the report's success callback speaks for a green run


def test_the_tasks_that_write_customers_announce_the_sumit_customers_asset(dagbag):
    """Their outlet is the alias crmsync adds the asset's event to when (and only when) they changed
    customers (crmsync.core.assets); downstream DAGs schedule on the asset by name."""
    from airflow.sdk import AssetAlias

    writers = {(dag_id, t.task_id) for dag_id in dagbag.dag_ids for t in dagbag.get_dag(dag_id).tasks
               if AssetAlias("crmsync_customers_changed") in t.outlets}
    assert writers == {
        ("crm_pull_customers", "pull_from_crm"), ("crm_pull_customers", "apply_approved_plan"),
        ("crm_push_customers", "push_to_crm"), ("crm_bidirectional_sync", "pull_from_crm"),
        ("crm_bidirectional_sync", "apply_approved_plan"), ("crm_bidirectional_sync", "push_changed"),
        ("crm_revert_run", "restore_values"), ("crm_revert_run", "push_restored"),
        ("crm_resolve_conflicts", "resolve_conflicts"), ("crm_resolve_conflicts", "push_resolved"),
        ("crm_apply_crm_events", "apply_crm_events"), ("crm_link_customers", "link_customers"),
        ("crm_link_customers", "push_linked")}
    export = dagbag.get_dag("crm_export_changed_customers")
    assert export.timetable.asset_condition == AssetAlias("crmsync_customers_changed")


def test_the_trigger_dags_params_validate_as_documented(dagbag):
    apply = dagbag.get_dag("crm_apply_crm_events")
    assert validated(apply, {})["max_events"] == 10_000
    for bad in ({"max_events": 0}, {"max_events": "many"}, {"conflict_policy": "latest"}):
        with pytest.raises(ParamValidationError):
            validated(apply, bad)
    triggers = dagbag.get_dag("crm_sumit_triggers")
    assert validated(triggers, {}) == {"action": "show", "trigger_types": ["CreateOrUpdate", "Archive", "Delete"],
                                       "view": None}
    for bad in ({"action": "list"}, {"trigger_types": []}, {"trigger_types": ["Everything"]}, {"view": 5}):
        with pytest.raises(ParamValidationError):
            validated(triggers, bad)
