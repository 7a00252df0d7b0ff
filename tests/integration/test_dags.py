"""The three DAGs run through Airflow against a real PostgreSQL and the SUMIT sandbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import (LIST_PATH, PUSH_PATHS, airflow_cli, assert_key_sent_only_as_credentials, assert_no_key,
                      data_snapshot, duplicates, ensure_schema, insert_local, list_requests, lost_and_duplicated,
                      lost_since, push_requests, rows, set_sumit_connection)

pytestmark = pytest.mark.usefixtures("env")

HEBREW = {"Name": 'חברת אלפא בע"מ', "Email": "alpha@example.co.il", "Phone": "050-1234567",
          "CompanyName": "אלפא", "TaxID": "012345678", "Address": "רחוב הרצל 1", "City": "תל אביב",
          "State": "", "Country": "IL", "ZipCode": "6100001", "Segment": "VIP", "מקור": "אתר"}
ENGLISH = {"Name": "Galil Software", "Email": "office@galil.example", "Phone": "+972501234567", "TaxID": "000000018",
           "City": "Haifa", "ZipCode": "3100001"}


def customers(pg):
    return {r[0]: r for r in rows(pg, "SELECT sumit_customer_id, id, name, email, phone, tax_id, country, city, metadata,"
                                      " updated_at FROM sumit_customers ORDER BY id")}


def last_run(pg):
    return rows(pg, "SELECT operation, status, fetched, created, updated, unchanged, skipped, pushed, failed,"
                    " conflicts, message FROM crm_sync_runs ORDER BY id DESC LIMIT 1")[0]


# -- pull -------------------------------------------------------------------------------------


def test_pull_creates_every_crm_customer_with_hebrew_custom_fields_and_leading_zeros(pg, sandbox, run_dag):
    ids = sandbox.control.add_customers([HEBREW, ENGLISH] + [{"Name": f"Customer {i}"} for i in range(120)])
    assert run_dag("crm_pull_customers") == "success"

    local = customers(pg)
    assert len(local) == 122
    alpha = local[str(ids[0])]
    assert alpha[2] == 'חברת אלפא בע"מ' and alpha[5] == "012345678" and alpha[7] == "תל אביב"
    assert alpha[8]["Segment"] == "VIP" and alpha[8]["מקור"] == "אתר"
    assert "+" in alpha[8]["last_synced_at"] or alpha[8]["last_synced_at"].endswith("+00:00")
    assert local[str(ids[1])][6] == "IL"  # default country
    assert last_run(pg)[:6] == ("pull", "success", 122, 122, 0, 0)


def test_pull_rerun_changes_nothing_and_updates_only_what_changed(pg, sandbox, run_dag):
    ids = sandbox.control.add_customers([HEBREW, ENGLISH])
    assert run_dag("crm_pull_customers") == "success"
    before = customers(pg)
    assert run_dag("crm_pull_customers") == "success"
    assert customers(pg) == before  # not even updated_at moved
    assert last_run(pg)[2:6] == (2, 0, 0, 2)

    sandbox.control.add_customers([{**ENGLISH, "CustomerID": ids[1], "Email": "new@galil.example"}])
    assert run_dag("crm_pull_customers") == "success"
    after = customers(pg)
    assert after[str(ids[1])][3] == "new@galil.example"
    assert after[str(ids[0])] == before[str(ids[0])]
    assert last_run(pg)[2:6] == (2, 0, 1, 1)


def test_pull_keeps_local_metadata_keys(pg, sandbox, run_dag):
    ids = sandbox.control.add_customers([HEBREW])
    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET metadata = metadata || '{\"owner\": \"dana\"}'")
    sandbox.control.add_customers([{**HEBREW, "CustomerID": ids[0], "Segment": "Gold"}])
    assert run_dag("crm_pull_customers") == "success"
    metadata = customers(pg)[str(ids[0])][8]
    assert metadata["owner"] == "dana" and metadata["Segment"] == "Gold"


def test_record_without_customer_id_is_skipped_counted_and_recorded(pg, sandbox, run_dag):
    sandbox.control.add_customers([ENGLISH])
    sandbox.control.add_raw([{"Name": "No id at all", "Email": "x@example.com"}])
    assert run_dag("crm_pull_customers", {"max_reject_ratio": 0.5}) == "success"  # 1 of 2 rejected
    assert len(customers(pg)) == 1
    run = last_run(pg)
    assert run[1] == "warning" and run[2] == 2 and run[6] == 1
    errors = rows(pg, "SELECT phase, error, record FROM crm_sync_errors")
    assert errors[0][0] == "pull" and "no CustomerID" in errors[0][1] and errors[0][2]["Name"] == "No id at all"


def test_paging_is_followed_and_a_server_ignoring_it_does_not_loop(pg, sandbox, run_dag, profile):
    sandbox.control.add_customers([{"Name": f"C{i}"} for i in range(130)])  # page_size 50: three pages
    set_sumit_connection(sandbox.url, read_concurrency=1)  # one page at a time: no speculative call past the end
    assert run_dag("crm_pull_customers") == "success"
    assert len(customers(pg)) == 130
    assert len(list_requests(sandbox, profile)) == 3

    sandbox.control.set_faults(ignore_paging=True, ignore_paging_says_more=True)
    assert run_dag("crm_pull_customers") == "success"
    assert last_run(pg)[2] == 130  # the repeated page was recognised, not merged again


def test_transient_faults_are_retried_inside_the_hook(pg, sandbox, run_dag, reliability):
    sandbox.control.add_customers([ENGLISH])
    sandbox.control.set_faults(fail_next={"count": 2, "status": 503})
    assert run_dag("crm_pull_customers") == "success"
    sandbox.control.set_faults(fail_next={"count": 1, "status": 429, "retry_after": 0})
    assert run_dag("crm_pull_customers") == "success"
    lost, duplicated = lost_and_duplicated(pg, sandbox)
    reliability("5xx and 429 (Retry-After) from SUMIT, within the retry budget", cases=2,
                outcome="success after retry", lost=lost, duplicated=duplicated)
    statuses = [r["status"] for r in sandbox.control.requests()]
    assert statuses.count(503) == 2 and statuses.count(429) == 1
    assert len(customers(pg)) == 1


def seed_synced(pg, sandbox, run_dag) -> dict:
    """A table in step with SUMIT (one customer pulled), and the snapshot of it a failed run must leave."""
    sandbox.control.add_customers([ENGLISH])
    assert run_dag("crm_pull_customers") == "success"
    sandbox.control.add_customers([HEBREW])  # something the failed run would have written
    return data_snapshot(pg, sandbox)


def test_faults_outlasting_the_retries_fail_the_run_with_the_cause(pg, sandbox, run_dag, reliability):
    before = seed_synced(pg, sandbox, run_dag)
    sandbox.control.set_faults(fail_next={"count": 10, "status": 503})
    assert run_dag("crm_pull_customers") == "failed"
    run = last_run(pg)
    after = data_snapshot(pg, sandbox)
    reliability("5xx storm outlasting the retry budget", outcome="failed naming HTTP 503; nothing written",
                lost=lost_since(before, after), duplicated=duplicates(pg, sandbox))
    assert run[1] == "failed" and "HTTP 503" in run[10]
    assert after == before


@pytest.mark.parametrize("kind, words", [("html", "not JSON"), ("truncated", "not JSON"), ("not_json", "not JSON"),
                                         ("missing_customers", "without a")])
def test_malformed_answer_fails_with_the_endpoint_named(pg, sandbox, run_dag, profile, kind, words, reliability):
    before = seed_synced(pg, sandbox, run_dag)
    sandbox.control.set_faults(malformed_next={"count": 1, "kind": kind})
    assert run_dag("crm_pull_customers") == "failed"
    message = last_run(pg)[10]
    after = data_snapshot(pg, sandbox)
    reliability("HTML error page, truncated or non-JSON body, envelope without its customer list",
                outcome="failed naming the endpoint and the fault; nothing written",
                lost=lost_since(before, after), duplicated=duplicates(pg, sandbox))
    assert LIST_PATH[profile] in message and words in message
    assert after == before


def test_wrong_credentials_fail_at_once_without_retry(pg, sandbox, run_dag, profile, reliability):
    before = seed_synced(pg, sandbox, run_dag)
    lists_before = len(list_requests(sandbox, profile))
    set_sumit_connection(sandbox.url, api_key="wrong-key")
    assert run_dag("crm_pull_customers") == "failed"
    after = data_snapshot(pg, sandbox)
    reliability("wrong credentials", outcome="failed at once, no retry, naming the credentials; nothing written",
                lost=lost_since(before, after), duplicated=duplicates(pg, sandbox))
    assert after == before
    assert len(list_requests(sandbox, profile)) == lists_before + 1  # no retry
    run = last_run(pg)
    assert run[1] == "failed" and "credentials" in run[10].lower()


def test_dry_run_pull_writes_nothing(pg, sandbox, run_dag):
    sandbox.control.add_customers([HEBREW, ENGLISH])
    assert run_dag("crm_pull_customers", {"dry_run": True}) == "success"
    assert rows(pg, "SELECT to_regclass('sumit_customers')")[0][0] is None  # not even the schema


# -- push -------------------------------------------------------------------------------------


def test_push_sends_chosen_customers_stores_crm_ids_and_names_unknown_ids(pg, sandbox, run_dag):
    ensure_schema(pg)
    first = insert_local(pg, 'מאפיית השכונה בע"מ', tax_id="001234567", city="ירושלים")
    second = insert_local(pg, "Second Ltd", email="s@example.com")
    untouched = insert_local(pg, "Not chosen")
    assert run_dag("crm_push_customers", {"customer_ids": [first, second, 9999], "max_reject_ratio": 0.5}) == "success"

    crm = {c["Name"]: c for c in sandbox.control.customers()}
    assert set(crm) == {'מאפיית השכונה בע"מ', "Second Ltd"}
    assert crm['מאפיית השכונה בע"מ']["TaxID"] == "001234567"
    local = {r[1]: r for r in rows(pg, "SELECT sumit_customer_id, id FROM sumit_customers")}
    assert local[first][0] == str(crm['מאפיית השכונה בע"מ']["CustomerID"])
    assert local[untouched][0] is None
    run = last_run(pg)
    assert run[1] == "warning" and run[7] == 2 and run[6] == 1 and "9999" in run[10]


def test_a_pull_after_pushing_new_customers_finds_them_unchanged(pg, sandbox, run_dag):
    """SUMIT holds no custom fields for a customer it just created; the pull must not count
    (and rewrite) every new customer as updated."""
    ensure_schema(pg)
    ids = [insert_local(pg, name, city="Haifa") for name in ("New A", "New B", "New C")]
    assert run_dag("crm_push_customers", {"customer_ids": ids}) == "success"
    assert run_dag("crm_pull_customers") == "success"
    assert last_run(pg)[2:6] == (3, 0, 0, 3)


def test_push_records_rejected_customers_and_continues(pg, sandbox, run_dag):
    ensure_schema(pg)
    good = insert_local(pg, "Good Customer")
    bad = insert_local(pg, "Refused Customer")
    nameless = insert_local(pg, "   ")
    sandbox.control.set_faults(reject_names=["Refused Customer"])
    assert run_dag("crm_push_customers", {"customer_ids": [good, bad, nameless], "max_reject_ratio": 1}) == "success"
    run = last_run(pg)
    assert (run[1], run[6], run[7], run[8]) == ("warning", 1, 1, 1)
    assert [c["Name"] for c in sandbox.control.customers()] == ["Good Customer"]
    assert rows(pg, "SELECT error FROM crm_sync_errors WHERE customer_id = %s", nameless)[0][0].startswith("customer has no name")
    errors = rows(pg, "SELECT customer_id, error FROM crm_sync_errors WHERE phase = 'push' AND customer_id = %s", bad)
    assert errors[0][0] == bad and "Rejected by sandbox rule" in errors[0][1]
    assert run_dag("crm_push_customers", {"customer_ids": [good, bad], "fail_on_partial": True,
                                          "max_reject_ratio": 1}) == "failed"


# Param validation refuses these before any hook exists: one API profile (the module's env would run both)
@pytest.mark.parametrize("profile", ["guide"])
@pytest.mark.parametrize("conf", [{}, {"customer_ids": []}, {"customer_ids": ["a"]}, {"customer_ids": [-1]},
                                  {"customer_ids": "1,2"}, {"customer_ids": [1], "dry_run": "yes"}])
def test_bad_conf_is_refused_before_any_work(pg, sandbox, guide_env, conf):
    import json

    result = airflow_cli("dags", "test", "crm_push_customers", "-c", json.dumps(conf))
    assert result.returncode != 0
    assert "customer_ids" in result.stdout + result.stderr or "dry_run" in result.stdout + result.stderr
    assert sandbox.control.requests() == []
    assert rows(pg, "SELECT to_regclass('sumit_customers')")[0][0] is None


# -- bidirectional ----------------------------------------------------------------------------


def test_bidirectional_pulls_then_pushes_local_changes_only(pg, sandbox, run_dag, profile):
    ids = sandbox.control.add_customers([HEBREW, ENGLISH])
    assert run_dag("crm_bidirectional_sync") == "success"
    assert last_run(pg)[7] == 0  # everything came from the CRM: nothing to push

    local_new = insert_local(pg, "Local Only Ltd", email="local@example.com")
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET phone = '03-5550000' WHERE sumit_customer_id = %s", (str(ids[1]),))
    assert run_dag("crm_bidirectional_sync") == "success"
    run = last_run(pg)
    assert run[0] == "bidirectional" and run[7] == 2 and run[8] == 0
    crm = {str(c["CustomerID"]): c for c in sandbox.control.customers()}
    assert crm[str(ids[1])]["Phone"] == "03-5550000"  # the local edit survived the pull and was pushed
    assert "Local Only Ltd" in {c["Name"] for c in crm.values()}
    assert rows(pg, "SELECT sumit_customer_id FROM sumit_customers WHERE id = %s", local_new)[0][0] is not None
    assert "Bidirectional sync completed. Pulled: 2, Pushed: 2 (Failed: 0)" in run[10]

    pushes_before = len(push_requests(sandbox, profile))
    assert run_dag("crm_bidirectional_sync") == "success"
    assert last_run(pg)[7] == 0  # a no-op run pushes nothing
    assert len(push_requests(sandbox, profile)) == pushes_before


@pytest.mark.parametrize("crm_changed, winner", [(timedelta(hours=-1), "local"), (timedelta(hours=1), "crm")],
                         ids=["local-edit-newer", "crm-edit-newer"])
def test_newer_wins_end_to_end_each_side_winning_once(pg, sandbox, run_dag, profile, crm_changed, winner):
    """The 03:00 run's policy, through Airflow and PostgreSQL: both sides edit the same customer;
    the later edit wins, and the winner ends up on both sides. The guide profile sends the CRM's
    change time (``UpdatedAt``); the rest listing has none, so there the pull's start counts and
    a local edit made before the pull loses."""
    ids = sandbox.control.add_customers([ENGLISH])
    assert run_dag("crm_bidirectional_sync") == "success"
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET email = 'local@x.il'")  # updated_at: now
        local_edit = conn.execute("SELECT updated_at FROM sumit_customers").fetchone()[0]
    crm_edit = (local_edit + crm_changed).isoformat()
    sandbox.control.add_customers([{**ENGLISH, "CustomerID": ids[0], "Email": "crm@x.il", "UpdatedAt": crm_edit}])
    assert run_dag("crm_bidirectional_sync") == "success"  # conflict_policy: newer_wins, the default
    expected = winner if profile == "guide" else "crm"
    value = {"local": "local@x.il", "crm": "crm@x.il"}[expected]
    assert rows(pg, "SELECT email FROM sumit_customers")[0][0] == value
    assert sandbox.control.customers()[0]["Email"] == value
    conflict = rows(pg, "SELECT winner, policy, local_values->>'email', crm_values->>'email' FROM crm_sync_conflicts")
    assert conflict == [(expected, "newer_wins", "local@x.il", "crm@x.il")]
    assert last_run(pg)[9] == 1


@pytest.mark.parametrize("policy, winner_value", [("crm_wins", "crm@x.il"), ("local_wins", "local@x.il")])
def test_conflicts_follow_the_policy_and_are_recorded(pg, sandbox, run_dag, policy, winner_value):
    ids = sandbox.control.add_customers([ENGLISH])
    assert run_dag("crm_bidirectional_sync") == "success"
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET email = 'local@x.il'")
    sandbox.control.add_customers([{**ENGLISH, "CustomerID": ids[0], "Email": "crm@x.il"}])
    assert run_dag("crm_bidirectional_sync", {"conflict_policy": policy}) == "success"
    assert rows(pg, "SELECT email FROM sumit_customers")[0][0] == winner_value
    assert sandbox.control.customers()[0]["Email"] == winner_value
    conflict = rows(pg, "SELECT winner, local_values->>'email', crm_values->>'email' FROM crm_sync_conflicts")
    assert conflict == [(policy.split("_")[0], "local@x.il", "crm@x.il")]
    assert last_run(pg)[9] == 1


def test_customer_ids_limit_the_push_phase(pg, sandbox, run_dag):
    ensure_schema(pg)
    a = insert_local(pg, "A")
    insert_local(pg, "B")
    assert run_dag("crm_bidirectional_sync", {"customer_ids": [a]}) == "success"
    assert [c["Name"] for c in sandbox.control.customers()] == ["A"]


# -- secrets ----------------------------------------------------------------------------------


def test_api_key_never_appears_in_output_logs_or_database(pg, sandbox, tmp_path, profile):
    """Runs the CLI at DEBUG, including failing runs, and scans everything they left behind."""
    import json

    sandbox.control.add_customers([HEBREW, ENGLISH])
    sandbox.control.add_raw([{"Name": "broken"}])
    outputs = []
    # One bad record of three: a green warning, so the scan covers a completed run's output too.
    runs = [("crm_bidirectional_sync", {}),
            ("crm_push_customers", {"customer_ids": [1, 424242]}),
            ("crm_pull_customers", {})]
    for dag_id, conf in runs:
        if dag_id == "crm_pull_customers":
            sandbox.control.set_faults(malformed_next={"count": 1, "kind": "html"})
        result = airflow_cli("dags", "test", dag_id, "-c", json.dumps(conf), home=tmp_path,
                             AIRFLOW__LOGGING__LOGGING_LEVEL="DEBUG")
        outputs.append(result.stdout + result.stderr)
    assert result.returncode != 0  # the last run failed on purpose

    everything = "\n".join(outputs)
    assert "Bidirectional sync completed" in everything  # the scan looked at real run output
    assert "Failed: 1" in everything or "not JSON" in everything
    # `airflow dags test` writes no task log files: the tasks' logs are in its output. (The live
    # end-to-end test scans the log files of a real Airflow, and fails when there are none.)
    assert "Counts: fetched=" in everything and "Status: " in everything  # the report task's own log lines
    assert "DEBUG" in everything.upper() and "SUMIT " in everything  # at DEBUG, with the hook's lines
    assert_no_key(everything, "the output of airflow dags test")
    assert not list(tmp_path.rglob("*.log")), "log files appeared: scan them too"
    # The metadata database holds XComs, rendered templates and run conf of every run.
    assert_no_key((tmp_path / "airflow.db").read_bytes().decode("utf-8", "replace"), "the metadata database")
    with pg.connect() as conn:
        for table in ("sumit_customers", "crm_sync_runs", "crm_sync_errors", "crm_sync_conflicts"):
            dump = conn.execute(f"SELECT coalesce(json_agg(t)::text, '') FROM {table} t").fetchone()[0]
            assert_no_key(dump, table)
    assert assert_key_sent_only_as_credentials(sandbox) >= 3
    sent_to = {entry["path"] for entry in sandbox.control.sent()}
    assert LIST_PATH[profile] in sent_to and sent_to & set(PUSH_PATHS[profile])  # listings and a push were read
    assert_no_key(json.dumps(sandbox.control.requests()), "the sandbox's request log")
    assert_no_key("".join(sandbox.stderr_lines), "the sandbox's stderr")  # it runs with --verbose


# -- more failure paths -----------------------------------------------------------------------


def _dags_test(dag_id, conf=None, **env_overrides):
    import json

    return airflow_cli("dags", "test", dag_id, "-c", json.dumps(conf or {}), **env_overrides)


def test_airflow_retries_transient_failures_but_never_bad_credentials(pg, sandbox, profile):
    retrying = {"CRMSYNC_TASK_RETRIES": "1", "CRMSYNC_TASK_RETRY_DELAY_SECONDS": "1"}
    sandbox.control.add_customers([ENGLISH])
    # Control: a fault that outlasts the hook's 4 tries fails the first task try; Airflow tries again.
    sandbox.control.set_faults(fail_next={"count": 4, "status": 503, "endpoint": LIST_PATH[profile]})
    assert _dags_test("crm_pull_customers", **retrying).returncode == 0
    assert len(list_requests(sandbox, profile)) == 5

    sandbox.control.reset([ENGLISH])
    set_sumit_connection(sandbox.url, api_key="wrong-key")
    assert _dags_test("crm_pull_customers", **retrying).returncode != 0
    assert len(list_requests(sandbox, profile)) == 1


def test_pull_alone_never_overwrites_a_local_edit(pg, sandbox, run_dag):
    ids = sandbox.control.add_customers([ENGLISH])
    assert run_dag("crm_pull_customers") == "success"
    with pg.connect() as conn:
        conn.execute("UPDATE sumit_customers SET city = 'Akko'")
    assert run_dag("crm_pull_customers") == "success"
    assert rows(pg, "SELECT city FROM sumit_customers")[0][0] == "Akko"
    assert sandbox.control.customers()[0]["City"] == "Haifa"  # the pull sends nothing
    assert str(ids[0]) in customers(pg)


def test_dry_run_push_sends_nothing(pg, sandbox, run_dag):
    ensure_schema(pg)
    local = insert_local(pg, "Dry Run Ltd")
    assert run_dag("crm_push_customers", {"customer_ids": [local], "dry_run": True}) == "success"
    assert sandbox.control.customers() == []
    assert rows(pg, "SELECT sumit_customer_id FROM sumit_customers")[0][0] is None
    assert rows(pg, "SELECT count(*) FROM crm_sync_runs")[0][0] == 0


def test_unreachable_database_fails_the_run_before_any_api_call(pg, sandbox, run_dag):
    import json
    import os

    from crmsync.testing.postgres import free_port

    sandbox.control.add_customers([ENGLISH])
    os.environ["AIRFLOW_CONN_CRM_POSTGRES"] = json.dumps({**pg.airflow_conn(), "port": free_port()})
    assert run_dag("crm_bidirectional_sync") == "failed"
    assert sandbox.control.requests() == []
