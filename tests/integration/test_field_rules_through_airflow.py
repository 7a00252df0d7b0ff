"""Field rules (docs/field-rules.md) through Airflow: the DAGs run with dag.test() against the
real PostgreSQL and the sandbox, the rules set as the Airflow Variable (through the
environment, AIRFLOW_VAR_CRMSYNC_FIELD_RULES, which dag.test and the CLI both read) or as a
rules file (CRMSYNC_FIELD_RULES_FILE); the rest profile's property mapping as the
connection's extra."""

from __future__ import annotations

import json

import pytest

from conftest import data_snapshot, push_requests, set_sumit_connection
from test_dags import ensure_schema, insert_local, last_run, rows

VARIABLE_ENV = "AIRFLOW_VAR_CRMSYNC_FIELD_RULES"
FILE_ENV = "CRMSYNC_FIELD_RULES_FILE"

ALPHA = {"Name": "Alpha Ltd", "Email": "crm@alpha.example", "Phone": "050-1111111", "City": "Haifa",
         "TaxID": "012345678", "Country": "IL", "Segment": "VIP", "Password": "hunter2", "api_token": "t-1"}
RULES = {"fields": {"email": "from_crm", "phone": "to_crm", "city": "none",
                    "tax_id": {"keep_local_when_crm_empty": True}},
         "exclude_metadata": ["password*", "*token"]}


@pytest.fixture(autouse=True)
def no_rules(monkeypatch):
    """Every test starts without rules, whatever the environment; monkeypatch restores it."""
    monkeypatch.delenv(VARIABLE_ENV, raising=False)
    monkeypatch.delenv(FILE_ENV, raising=False)


def set_variable(monkeypatch, value) -> None:
    monkeypatch.setenv(VARIABLE_ENV, value if isinstance(value, str) else json.dumps(value))


def set_file(monkeypatch, tmp_path, value) -> None:
    path = tmp_path / "field_rules.json"
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    monkeypatch.setenv(FILE_ENV, str(path))


def run_states(dagbag, dag_id: str, conf: dict | None = None) -> tuple[str, dict[str, str]]:
    """(the run's state, each task's state), from a dag.test() run."""
    dag = dagbag.get_dag(dag_id)
    defaults = {name: dag.params.get_param(name).value for name in dag.params.keys()
                if dag.params.get_param(name).has_value}
    dag_run = dag.test(run_conf={**defaults, **(conf or {})})
    return str(dag_run.state), {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def local_row(pg, sumit_id):
    return rows(pg, "SELECT name, email, phone, city, tax_id, state, company_name, metadata, updated_at "
                    "FROM sumit_customers WHERE sumit_customer_id = %s", str(sumit_id))[0]


def crm_customer(sandbox, sumit_id) -> dict:
    return next(c for c in sandbox.control.customers() if str(c["CustomerID"]) == str(sumit_id))


def pushed_bodies(sandbox, profile) -> list[dict]:
    """What the push requests carried: the guide's Customer or the rest profile's Details."""
    return [r["body"].get("Customer") or r["body"].get("Details") for r in push_requests(sandbox, profile)]


def sync(run_dag) -> tuple:
    """One bidirectional run: its (status, created, updated, pushed, conflicts) from crm_sync_runs."""
    assert run_dag("crm_bidirectional_sync") == "success"
    run = last_run(run_dag.pg)
    return run[1], run[3], run[4], run[7], run[9]


@pytest.fixture
def sync_run(run_dag, pg):
    run_dag.pg = pg
    return lambda: sync(run_dag)


# -- a bad rule -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["variable", "file"])
@pytest.mark.parametrize("bad, entry", [
    ({"fields": {"emial": "from_crm"}}, "fields.emial: 'emial' is not a synced field (did you mean 'email'?)"),
    ({"fields": {"email": "sideways"}}, "fields.email: 'sideways' is not a direction"),
])
def test_a_bad_rule_fails_the_first_task_naming_the_entry_and_nothing_is_written(
        pg, sandbox, guide_env, dagbag, run_dag, monkeypatch, tmp_path, capfd, where, bad, entry):
    [alpha] = sandbox.control.add_customers([ALPHA])
    assert run_dag("crm_bidirectional_sync") == "success"  # a table in step with SUMIT
    local = insert_local(pg, "Local Only Ltd")  # what the failed run would push
    sandbox.control.add_customers([{**ALPHA, "CustomerID": alpha, "Email": "new@alpha.example"}])  # ... and pull
    before, requests_before = data_snapshot(pg, sandbox), len(sandbox.control.requests())
    if where == "variable":
        set_variable(monkeypatch, bad)
        source = "Airflow Variable 'crmsync_field_rules'"
    else:
        set_file(monkeypatch, tmp_path, bad)
        source = f"file {tmp_path / 'field_rules.json'}"
    capfd.readouterr()

    state, tasks = run_states(dagbag, "crm_bidirectional_sync")

    assert state == "failed"
    assert tasks["prepare_customers_table"] == "failed"
    assert tasks["pull_from_crm"] == "upstream_failed" and tasks["push_changed"] == "upstream_failed"
    assert f"Bad field rules in {source}: {entry}" in "".join(capfd.readouterr())
    assert data_snapshot(pg, sandbox) == before  # nothing written, locally or in SUMIT
    assert len(sandbox.control.requests()) == requests_before  # SUMIT not even asked
    assert rows(pg, "SELECT sumit_customer_id FROM sumit_customers WHERE id = %s", local)[0][0] is None


def test_a_bad_rule_stops_a_first_run_before_the_table_exists(pg, sandbox, guide_env, dagbag, monkeypatch):
    sandbox.control.add_customers([ALPHA])
    set_variable(monkeypatch, {"fields": {"phone": {"direction": "to_crm", "keep_local_when_crm_empty": True}}})
    state, tasks = run_states(dagbag, "crm_pull_customers")
    assert state == "failed" and tasks["prepare_customers_table"] == "failed"
    assert rows(pg, "SELECT to_regclass('sumit_customers')")[0][0] is None
    assert sandbox.control.requests() == []


# -- no rules: as before ------------------------------------------------------------------------


EXPECTED_BODY = {
    "guide": {"Name": "Local Only Ltd", "Email": "local@example.co.il", "Phone": "", "CompanyName": "",
              "TaxID": "", "Address": "", "City": "Akko", "State": "", "Country": "IL", "ZipCode": ""},
    "rest": {"Name": "Local Only Ltd", "EmailAddress": "local@example.co.il", "Phone": "", "CompanyNumber": "",
             "Address": "", "City": "Akko", "ZipCode": "",
             "Properties": {"CompanyName": "", "State": "", "Country": "IL"}},
}


@pytest.mark.parametrize("how", ["no rules", "rules that change nothing"])
def test_without_rules_the_bodies_and_the_table_are_as_before(pg, sandbox, env, profile, sync_run, monkeypatch, how):
    if how != "no rules":
        set_variable(monkeypatch, {"fields": {"email": "both", "city": {"direction": "both"}}, "exclude_metadata": []})
    [alpha] = sandbox.control.add_customers([ALPHA])
    ensure_schema(pg)
    local = insert_local(pg, "Local Only Ltd", email="local@example.co.il", city="Akko")
    assert sync_run()[:4] == ("success", 1, 0, 1)

    [body] = pushed_bodies(sandbox, profile)
    expected = ({"ExternalIdentifier": str(local), **EXPECTED_BODY[profile]} if profile == "guide"
                else {**EXPECTED_BODY[profile], "ExternalIdentifier": str(local), "SearchMode": 2})
    assert json.dumps(body) == json.dumps(expected)  # every key, in order, empty values as ""
    row = local_row(pg, alpha)
    assert row[:7] == ("Alpha Ltd", "crm@alpha.example", "050-1111111", "Haifa", "012345678", None, None)
    assert {k: v for k, v in row[7].items() if k != "last_synced_at"} == {
        "Segment": "VIP", "Password": "hunter2", "api_token": "t-1"}

    sandbox.control.add_customers([{**ALPHA, "CustomerID": alpha, "Phone": "03-7777777", "TaxID": ""}])
    assert sync_run()[:4] == ("success", 0, 1, 0)
    assert local_row(pg, alpha)[2] == "03-7777777" and local_row(pg, alpha)[4] is None  # the CRM's values, blank too


# -- rules in force ---------------------------------------------------------------------------------


def test_rules_from_the_variable_shape_every_direction_without_ping_pong(pg, sandbox, env, profile, sync_run,
                                                                        monkeypatch):
    set_variable(monkeypatch, RULES)
    [alpha] = sandbox.control.add_customers([ALPHA])
    ensure_schema(pg)
    local = insert_local(pg, "Local Only Ltd", email="local@example.co.il", phone="04-1234567", city="Akko")
    assert sync_run()[:4] == ("success", 1, 0, 1)

    row = local_row(pg, alpha)
    assert row[:5] == ("Alpha Ltd", "crm@alpha.example", None, None, "012345678")  # phone and city not taken
    assert "Password" not in row[7] and "api_token" not in row[7] and row[7]["Segment"] == "VIP"
    [create] = pushed_bodies(sandbox, profile)
    keys = json.dumps(create, ensure_ascii=False)
    assert "04-1234567" in keys and "Akko" not in keys  # to_crm sent, none not
    assert "local@example.co.il" in keys  # a create gives SUMIT the first value of a from_crm field

    # SUMIT edits what the rules do not take, and blanks the tax id: nothing local changes, nothing is pushed
    sandbox.control.add_customers([{**ALPHA, "CustomerID": alpha, "Phone": "03-7777777", "City": "Eilat",
                                    "TaxID": "", "Password": "changed", "api_token": "t-2"}])
    updated_at = local_row(pg, alpha)[8]
    assert sync_run()[2:] == (0, 0, 0)
    assert local_row(pg, alpha)[:5] == ("Alpha Ltd", "crm@alpha.example", None, None, "012345678")
    assert local_row(pg, alpha)[8] == updated_at

    # local edits: the phone is sent, the e-mail (from_crm) and city (none) are not, and the e-mail goes back
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET phone = '052-2222222', email = 'mine@alpha.example', city = 'Akko' "
                     "WHERE sumit_customer_id = %s", [str(alpha)])
    pushes = len(push_requests(sandbox, profile))
    assert sync_run()[3] == 1
    sent = json.dumps(pushed_bodies(sandbox, profile)[pushes:], ensure_ascii=False)
    assert "052-2222222" in sent and "mine@alpha.example" not in sent and "Akko" not in sent
    assert crm_customer(sandbox, alpha)["Phone"] == "052-2222222"
    assert crm_customer(sandbox, alpha)["Email"] == "crm@alpha.example" and crm_customer(sandbox, alpha)["City"] == "Eilat"
    assert sync_run()[2:4] == (1, 0)  # the e-mail comes back from SUMIT
    assert local_row(pg, alpha)[1:4] == ("crm@alpha.example", "052-2222222", "Akko")

    # settled: two more runs push nothing and change nothing (but the record hash the first of
    # them stores: the push above changed crm_fingerprint, which cleared it)
    content = "SELECT (to_jsonb(c) - 'crm_record_hash')::text FROM sumit_customers c ORDER BY id"
    settled = rows(pg, content)
    pushes = len(push_requests(sandbox, profile))
    assert sync_run()[2:] == (0, 0, 0) and sync_run()[2:] == (0, 0, 0)
    assert len(push_requests(sandbox, profile)) == pushes
    assert rows(pg, content) == settled
    assert "hunter2" not in json.dumps(sandbox.control.requests())
    assert all("Password" not in json.dumps(body) for body in pushed_bodies(sandbox, profile))
    assert rows(pg, "SELECT count(*) FROM crm_sync_conflicts")[0][0] == 0
    assert rows(pg, "SELECT email, city FROM sumit_customers WHERE id = %s", local)[0] == ("local@example.co.il", "Akko")


def test_rules_from_a_file_and_the_variable_wins_over_it(pg, sandbox, guide_env, sync_run, monkeypatch, tmp_path):
    set_file(monkeypatch, tmp_path, {"fields": {"name": "to_crm"}, "exclude_metadata": ["segment"]})
    [alpha] = sandbox.control.add_customers([ALPHA])
    assert sync_run()[:4] == ("success", 1, 0, 0)  # a new row takes the CRM's name, and is not pushed back
    assert local_row(pg, alpha)[0] == "Alpha Ltd" and "Segment" not in local_row(pg, alpha)[7]
    sandbox.control.add_customers([{**crm_customer(sandbox, alpha), "Name": "Renamed in SUMIT", "Segment": "Gold"}])
    assert sync_run()[2:] == (0, 0, 0)
    assert local_row(pg, alpha)[0] == "Alpha Ltd"

    set_variable(monkeypatch, {"fields": {"email": "none"}})  # the Variable replaces the file
    assert sync_run()[2:4] == (1, 0)  # the name and Segment are taken again
    assert local_row(pg, alpha)[0] == "Renamed in SUMIT" and local_row(pg, alpha)[7]["Segment"] == "Gold"


def test_a_rule_that_starts_hiding_a_field_keeps_a_pending_local_edit(pg, sandbox, guide_env, run_dag, monkeypatch):
    [alpha] = sandbox.control.add_customers([ALPHA])
    assert run_dag("crm_bidirectional_sync") == "success"  # in step, without rules
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET email = 'mine@alpha.example'")  # not pushed yet
    set_variable(monkeypatch, {"fields": {"phone": "to_crm"}})
    # SUMIT's copy did not change: the new rule changes how it is seen, not what it holds
    assert run_dag("crm_bidirectional_sync", {"conflict_policy": "crm_wins"}) == "success"
    run = last_run(pg)
    assert (run[7], run[9]) == (1, 0)  # pushed, no conflict
    assert local_row(pg, alpha)[1:3] == ("mine@alpha.example", "050-1111111")
    assert crm_customer(sandbox, alpha)["Email"] == "mine@alpha.example"


# -- the rest profile's properties ----------------------------------------------------------------


def test_rest_properties_follow_the_connection_and_a_property_the_folder_lacks_is_never_sent(
        pg, sandbox, guide_env, sync_run):
    folder = ["CompanyName", "Country", "מחוז"]  # this folder has no State property
    sandbox.control.set_faults(folder_properties=folder)
    set_sumit_connection(sandbox.url, profile="rest")
    [alpha] = sandbox.control.add_customers([{**ALPHA, "מחוז": "North"}])
    ensure_schema(pg)
    local = insert_local(pg, "Local Only Ltd", state="Center")

    # the default mapping names State: the folder refuses the create
    status, created, _, pushed, _ = sync_run()
    assert (status, created, pushed) == ("warning", 1, 0)
    assert "Property 'State' does not exist in folder 'customers'" in last_run(pg)[10]
    assert len(sandbox.control.customers()) == 1
    assert local_row(pg, alpha)[5] is None and local_row(pg, alpha)[7]["מחוז"] == "North"  # a custom field

    # mapped: state travels as מחוז, and company_name (mapped to none) is neither read nor sent
    set_sumit_connection(sandbox.url, profile="rest", property_fields={"state": "מחוז", "company_name": None})
    pushes = len(push_requests(sandbox, "rest"))
    assert sync_run() == ("success", 0, 1, 1, 0)  # the retried create goes through
    assert local_row(pg, alpha)[5] == "North"  # read from מחוז
    [create] = pushed_bodies(sandbox, "rest")[pushes:]
    assert create["Properties"] == {"מחוז": "Center", "Country": "IL"}
    assert rows(pg, "SELECT sumit_customer_id IS NOT NULL FROM sumit_customers WHERE id = %s", local)[0][0]

    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET phone = '052-3333333', company_name = 'Local Company' "
                     "WHERE sumit_customer_id = %s", [str(alpha)])
    pushes = len(push_requests(sandbox, "rest"))
    assert sync_run()[3] == 1
    [update] = pushed_bodies(sandbox, "rest")[pushes:]
    assert update["Properties"] == {"מחוז": "North", "Country": "IL"} and update["Phone"] == "052-3333333"
    assert "CompanyName" not in crm_customer(sandbox, alpha)
    sandbox.control.add_customers([{**crm_customer(sandbox, alpha), "מחוז": "South", "CompanyName": "SUMIT's"}])
    assert sync_run()[2:4] == (1, 0)
    assert local_row(pg, alpha)[5:7] == ("South", "Local Company")  # company_name kept: SUMIT does not carry it
    assert sync_run()[2:] == (0, 0, 0) and sync_run()[2:] == (0, 0, 0)
    assert all("State" not in body.get("Properties", {}) for body in pushed_bodies(sandbox, "rest")[1:])
