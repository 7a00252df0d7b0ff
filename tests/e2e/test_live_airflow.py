"""crmsync on a live Airflow 3 through its REST API v2, as a user or a script drives it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest
import requests

from .live_helpers import PUSH_DAG, SYNC_DAG, add_customers


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
        "crm_bidirectional_sync", "crm_pull_customers", "crm_push_customers"]


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
    assert states == {"prepare_customers_table": "success", "push_to_crm": "success", "report": "success"}

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


def test_no_secret_in_any_log_or_the_metadata_database(rest_push, live_airflow):
    """After a push run, the sandbox's API key is in no component or task log, no sandbox
    output and no table of Airflow's metadata database."""
    key = live_airflow._api_key
    files = [p for p in live_airflow.home.rglob("*") if p.is_file()]
    assert any("task_id=push_to_crm" in str(p) for p in files), "no task log was written: nothing to check"
    leaked = [str(p) for p in files if key.encode() in p.read_bytes()]
    assert not leaked, f"the API key is in {leaked}"
    assert key not in live_airflow.sandbox.stderr()

    with psycopg.connect(live_airflow.pg.dsn.replace(f"dbname={live_airflow.pg.dbname}", "dbname=airflow")) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        assert "xcom" in tables and "task_instance" in tables
        holding = [t for t in tables
                   if conn.execute(f'SELECT count(*) FROM "{t}" x WHERE x::text LIKE %s', (f"%{key}%",)).fetchone()[0]]
    assert not holding, f"the API key is in the metadata tables {holding}"
