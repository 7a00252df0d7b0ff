"""crmsync on a live Airflow 3 through its REST API v2, as a user or a script drives it."""

from __future__ import annotations

import json
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest
import requests

from .conftest import sumit_connection_body
from .live_helpers import PULL_DAG, PUSH_DAG, SYNC_DAG, add_customers


def test_token_endpoint_of_the_simple_auth_manager(live_airflow):
    bad = requests.post(f"{live_airflow.url}/auth/token", timeout=30,
                        json={"username": live_airflow.username, "password": live_airflow.password + "x"})
    assert bad.status_code == 401, bad.text
    assert requests.get(f"{live_airflow.url}/api/v2/dags", timeout=30).status_code == 401

    good = requests.post(f"{live_airflow.url}/auth/token", timeout=30,
                         json={"username": live_airflow.username, "password": live_airflow.password})
    assert good.status_code == 201, good.text
    token = good.json()["access_token"]
    assert token.count(".") == 2  # a JWT
    dags = requests.get(f"{live_airflow.url}/api/v2/dags", params={"tags": "crmsync"}, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})
    assert dags.status_code == 200, dags.text
    assert sorted(d["dag_id"] for d in dags.json()["dags"]) == [
        "crm_apply_crm_events", "crm_bidirectional_sync", "crm_export_changed_customers", "crm_link_customers",
        "crm_pull_customers", "crm_push_customers", "crm_resolve_conflicts", "crm_revert_run", "crm_sumit_triggers"]


def test_sumit_api_pool_exists(api):
    pool = api.ok("GET", "/api/v2/pools/sumit_api")
    assert pool["slots"] == 2


@pytest.fixture(scope="module")
def rest_push(api, customers_table):
    """Two new local customers pushed by a crm_push_customers run triggered through the REST API."""
    ids = add_customers(customers_table, "E2E REST Ltd", "חברת בדיקה מקצה לקצה")
    api.unpause(PUSH_DAG)
    response = api.call("POST", f"/api/v2/dags/{PUSH_DAG}/dagRuns",
                        json={"logical_date": None, "conf": {"customer_ids": ids}})
    assert response.status_code == 200, response.text
    run = response.json()
    return ids, run, api.wait_for_run(PUSH_DAG, run["dag_run_id"])


def test_push_customers_triggered_through_the_rest_api(rest_push, api, live_airflow, customers_table):
    ids, run, finished = rest_push
    assert run["conf"] == {"customer_ids": ids}
    assert run["run_type"] == "manual" and run["triggered_by"] == "rest_api"
    states = api.task_states(PUSH_DAG, run["dag_run_id"])
    assert finished["state"] == "success", (states, api.task_log(PUSH_DAG, run["dag_run_id"], "push_to_crm"))
    assert states == {"prepare_customers_table": "success", "approve_mass_push": "skipped",  # 2 customers: no approval
                      "push_to_crm": "success", "report": "success"}

    with customers_table.connect() as conn:
        rows = conn.execute("SELECT id, name, sumit_customer_id FROM sumit_customers WHERE id = ANY(%s) ORDER BY id",
                            (ids,)).fetchall()
        summary = conn.execute("SELECT status, pushed, failed FROM crm_sync_runs WHERE dag_run_id = %s",
                               (run["dag_run_id"],)).fetchone()
    assert summary == ("success", 2, 0)
    assert len(rows) == 2 and all(row[2] for row in rows), rows  # SUMIT's ids were stored
    in_crm = {str(c["CustomerID"]): c["Name"] for c in live_airflow.sandbox.control.customers()}
    assert {str(row[2]): row[1] for row in rows}.items() <= in_crm.items()
    assert "Pushed: 2" in api.task_log(PUSH_DAG, run["dag_run_id"], "report")


@pytest.mark.parametrize("conf, reason", [
    ({"customer_ids": ["x"]}, "'x' is not of type 'integer'"),
    ({"customer_ids": [0]}, "less than the minimum of 1"),
    ({}, "customer_ids"),
])
def test_bad_conf_is_refused_with_the_reason(api, conf, reason):
    before = api.ok("GET", f"/api/v2/dags/{PUSH_DAG}/dagRuns")["total_entries"]
    response = api.call("POST", f"/api/v2/dags/{PUSH_DAG}/dagRuns", json={"logical_date": None, "conf": conf})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "customer_ids" in detail and reason in detail, detail
    assert api.ok("GET", f"/api/v2/dags/{PUSH_DAG}/dagRuns")["total_entries"] == before  # no run was made


def test_next_scheduled_sync_is_at_3am_in_jerusalem(api):
    """The scheduler's next run of the sync is a 03:00 in Jerusalem (01:00 or 00:00 UTC).

    A paused DAG with catchup=False is due at the latest 03:00 that has passed (the run
    Airflow starts when it is unpaused) or the coming one: either way within a day of now.
    """
    dag = api.ok("GET", f"/api/v2/dags/{SYNC_DAG}")
    assert dag["timetable_summary"] == "0 3 * * *", dag["timetable_summary"]
    assert dag["next_dagrun_run_after"], dag
    run_after = datetime.fromisoformat(dag["next_dagrun_run_after"])
    in_jerusalem = run_after.astimezone(ZoneInfo("Asia/Jerusalem"))
    assert (in_jerusalem.hour, in_jerusalem.minute, in_jerusalem.second) == (3, 0, 0), in_jerusalem
    assert run_after.astimezone(timezone.utc).hour in (0, 1), run_after  # not 03:00 UTC
    assert abs(run_after - datetime.now(timezone.utc)) <= timedelta(days=1), run_after
    assert datetime.fromisoformat(dag["next_dagrun_logical_date"]) == run_after


def trigger(api, dag_id: str, conf: dict) -> dict:
    response = api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_scheduled_run(api, dag_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"run_type": "scheduled"})["dag_runs"]
        if runs:
            return runs[0]
        time.sleep(1)
    raise AssertionError(f"the scheduler made no scheduled run of {dag_id} in {timeout} s")


@pytest.fixture(scope="module")
def every_dag_ran(api, live_airflow, customers_table, rest_push):
    """Besides the REST push: a manual pull, the 03:00 sync run that unpausing creates (the real
    scheduler, catchup off), and a push run that fails (fail_on_partial, an unknown id), whose
    DAG-level failure callback the dag-processor runs. All at DEBUG (see conftest)."""
    live_airflow.sandbox.control.add_customers([{"Name": "E2E CRM Customer", "Email": "crm@example.co.il"},
                                                {"Name": "לקוח מקצה לקצה", "City": "חיפה"}])
    api.unpause(PULL_DAG)
    pull = trigger(api, PULL_DAG, {})
    pulled = api.wait_for_run(PULL_DAG, pull["dag_run_id"])
    api.unpause(SYNC_DAG)
    scheduled = wait_for_scheduled_run(api, SYNC_DAG)
    synced = api.wait_for_run(SYNC_DAG, scheduled["dag_run_id"])
    failing = trigger(api, PUSH_DAG, {"customer_ids": [987654321], "fail_on_partial": True})
    failed = api.wait_for_run(PUSH_DAG, failing["dag_run_id"])
    return {"pull": pulled, "sync": synced, "failed_push": failed}


def test_all_three_dags_run_under_the_real_scheduler_including_the_3am_sync(every_dag_ran, api, customers_table):
    assert every_dag_ran["pull"]["state"] == "success", api.task_states(PULL_DAG, every_dag_ran["pull"]["dag_run_id"])
    sync = every_dag_ran["sync"]
    assert sync["state"] == "success", api.task_states(SYNC_DAG, sync["dag_run_id"])
    assert sync["run_type"] == "scheduled"
    at = datetime.fromisoformat(sync["logical_date"]).astimezone(ZoneInfo("Asia/Jerusalem"))
    assert (at.hour, at.minute) == (3, 0), at
    assert every_dag_ran["failed_push"]["state"] == "failed"
    with customers_table.connect() as conn:
        statuses = dict(conn.execute("SELECT dag_run_id, status FROM crm_sync_runs").fetchall())
    assert statuses[sync["dag_run_id"]] in ("success", "warning")
    assert statuses[every_dag_ran["failed_push"]["dag_run_id"]] == "failed"


def test_the_dag_processor_runs_the_push_dags_failure_callback(every_dag_ran, live_airflow):
    """Airflow's in-process runner could not build this callback's context (crmsync works
    around it, airflow_compat.py); the dag-processor builds it from the parsed DAG."""
    deadline = time.monotonic() + 60
    while True:
        texts = {p: p.read_text(errors="replace") for p in live_airflow.home.rglob("*.log")}
        ran = [p for p, text in texts.items()
               if any("Executing on_failure dag callback" in line and PUSH_DAG in line for line in text.splitlines())]
        if ran or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert ran, "no log shows the push DAG's failure callback running"
    broken = [str(p) for p, text in texts.items() if "ParamValidationError" in text or "Callback failed" in text]
    assert not broken, f"a DAG callback failed: {broken}"
    # The report task, which failed the run, had already notified: the DAG's callback stays silent.
    assert not any(f"crmsync notification (failure): {PUSH_DAG}: run failed" in text for text in texts.values())


@pytest.fixture(scope="module")
def rest_profile_ran(every_dag_ran, api, live_airflow, customers_table):
    """The three DAGs again with sumit_default switched to SUMIT's published REST API (``rest``)
    through the REST API; switched back to ``guide`` after."""
    api.ok("PATCH", "/api/v2/connections/sumit_default", json=sumit_connection_body(live_airflow, "rest"))
    try:
        live_airflow.sandbox.control.add_customers([{"Name": "REST Profile Customer", "TaxID": "012345678"}])
        ids = add_customers(customers_table, "Pushed Over REST Ltd")
        runs = {}
        for dag_id, conf in ((PULL_DAG, {}), (PUSH_DAG, {"customer_ids": ids}), (SYNC_DAG, {})):
            runs[dag_id] = api.wait_for_run(dag_id, trigger(api, dag_id, conf)["dag_run_id"])
        return ids, runs
    finally:
        api.ok("PATCH", "/api/v2/connections/sumit_default", json=sumit_connection_body(live_airflow, "guide"))


def test_all_three_dags_under_the_rest_profile(rest_profile_ran, api, live_airflow, customers_table):
    ids, runs = rest_profile_ran
    assert {dag_id: run["state"] for dag_id, run in runs.items()} == {
        PULL_DAG: "success", PUSH_DAG: "success", SYNC_DAG: "success"}, {
        dag_id: api.task_states(dag_id, run["dag_run_id"]) for dag_id, run in runs.items()}
    paths = {r["path"] for r in live_airflow.sandbox.control.requests()}
    assert {"/crm/data/listentities/", "/accounting/customers/create/"} <= paths  # the rest endpoints were used
    with customers_table.connect() as conn:
        linked = conn.execute("SELECT sumit_customer_id FROM sumit_customers WHERE id = ANY(%s)", (ids,)).fetchall()
        pulled = conn.execute("SELECT tax_id FROM sumit_customers WHERE name = 'REST Profile Customer'").fetchall()
    assert all(row[0] for row in linked) and pulled == [("012345678",)]


def test_no_secret_in_any_log_or_the_metadata_database(every_dag_ran, rest_profile_ran, live_airflow):
    """After every DAG ran at DEBUG under both API profiles (failures included), the sandbox's API
    key is in no component or task log, no sandbox output and no table of Airflow's metadata
    database (where the connection itself is stored encrypted), in any spelling."""
    key = live_airflow._api_key
    forms = {key, key[:8], json.dumps(key)[1:-1], json.dumps(key, ensure_ascii=False)[1:-1], repr(key)[1:-1],
             urllib.parse.quote(key, safe=""), urllib.parse.quote_plus(key)}
    files = [p for p in live_airflow.home.rglob("*") if p.is_file()]
    for task_id in ("push_to_crm", "pull_from_crm", "push_changed", "report"):
        assert any(f"task_id={task_id}" in str(p) for p in files), f"no {task_id} task log was written"
    for component in ("scheduler", "dag-processor", "api-server"):
        assert live_airflow.log_file(component).stat().st_size > 0, f"the {component} wrote no log"
    assert "DEBUG" in live_airflow.log_file("scheduler").read_text(errors="replace").upper()
    leaked = [(str(p), form) for p in files for form in forms
              if form in p.read_bytes().decode("utf-8", "replace")]
    assert not leaked, f"the API key is in {leaked}"
    assert not [form for form in forms if form in live_airflow.sandbox.stderr()]

    with psycopg.connect(live_airflow.pg.dsn.replace(f"dbname={live_airflow.pg.dbname}", "dbname=airflow")) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        assert "xcom" in tables and "task_instance" in tables
        holding = [(t, form) for t in tables for form in forms
                   if conn.execute(f'SELECT count(*) FROM "{t}" x WHERE strpos(x::text, %s) > 0', (form,)).fetchone()[0]]
    assert not holding, f"the API key is in the metadata tables {holding}"
