"""What a schema cannot express, tried by hand against the console and the receiver (served as
in test_fuzz_http.py: Airflow's api-server app on a real socket, the console at /crmsync): a
NUL in a search, integers past PostgreSQL's range, a 2 MB body, a user the auth manager lets
read nothing. Each gets a 4xx naming what was wrong (a page for a page, JSON for /api/...),
and nothing is written and no run starts."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from console_server import CUSTOMERS, ConsoleServer

TOKEN = secrets.token_urlsafe(24)
PAST_BIGINT = "9" * 25


@pytest.fixture(scope="module")
def server(pg, sandbox, dagbag):
    with ConsoleServer(pg, dagbag, webhook_token=TOKEN) as running:
        yield running


@pytest.fixture
def console(server):
    server.seed()
    before = server.writes()
    with httpx.Client(base_url=server.console_url, timeout=30,
                      headers={"Authorization": f"Bearer {server.admin_token}"}) as client:
        yield client
    assert server.writes() == before, "a refused request wrote something or started a run"


def refused_page(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    for word in words:
        assert word in response.text, (word, response.text[-1500:])
    return response.text


def refused_json(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    for word in words:
        assert word in response.text, (word, response.text[:1500])
    return response.json()


def test_a_nul_in_a_search_is_a_400_page_naming_q(console):
    refused_page(console.get("/customers", params={"q": "Dana\x00"}), 400, "q: must not contain a NUL character")
    refused_page(console.get("/customers", params={"q": "x" * 201}), 400, "q: must be at most 200 characters")


def test_integers_past_postgresql_range_are_refused_by_name(console):
    refused_page(console.get("/customers", params={"page": PAST_BIGINT}), 400, "page: must be at most 1000000")
    refused_page(console.get("/customers", params={"page": "0"}), 400, "page: must be 1 or more")
    refused_page(console.get("/customers", params={"page": "two"}), 400, "page: must be a whole number")
    refused_page(console.get(f"/customers/{PAST_BIGINT}"), 400, "customer_id: must be at most")
    refused_page(console.get("/customers/-1"), 400, "customer_id: must be 1 or more")
    refused_page(console.get("/runs", params={"days": PAST_BIGINT}), 400, "days: must be at most 366")
    refused_page(console.get("/errors", params={"show": "all"}), 400, "show: must be one of")
    refused_page(console.get("/customers", params={"state": "lost"}), 400, "state: must be one of")
    refused_page(console.get("/run/crm_pull_customers/manual%00run"), 400, "dag_run_id: must not contain a NUL")
    # the largest page that is still a page: an empty list, not an error
    assert "Dana Levi" not in console.get("/customers", params={"page": "1000000"}).text
    assert console.get("/customers", params={"page": "1000000"}).status_code == 200


def test_the_api_answers_422_json_naming_the_parameter(console, server):
    body = refused_json(console.post("/api/errors/ignore", json={"error_ids": [int(PAST_BIGINT)]}), 422,
                        "must be at most")
    assert body["detail"][0]["loc"] == ["body", "error_ids", 0]
    assert PAST_BIGINT not in json.dumps(body), "the refused value is echoed back"
    refused_json(console.post("/api/errors/ignore", json={"error_ids": []}), 422, "must name at least 1")
    refused_json(console.post("/api/errors/ignore", json={"error_ids": list(range(1, 1002))}), 422,
                 "may name at most 1000")
    refused_json(console.post("/api/trigger", json={"dag_id": "crm_revert_run"}), 422, "dag_id", "must be one of")
    refused_json(console.post("/api/trigger", json={"dag_id": "crm_pull_customers", "conf": {"dry_run": "a\x00"}}),
                 422, "conf holds a text with a NUL character")
    deep: dict = {}
    for _ in range(40):
        deep = {"x": deep}
    refused_json(console.post("/api/trigger", json={"dag_id": "crm_pull_customers", "conf": deep}), 422,
                 "nested more than 16 levels")
    body = refused_json(console.post("/api/trigger", json={"dag_id": "crm_pull_customers", "note": "\x00"}), 422,
                        "must not contain a NUL character")
    assert body["detail"][0]["loc"] == ["body", "note"]
    refused_json(console.get("/api/runs/crm_pull_customers/run%00id"), 422, "dag_run_id")
    refused_json(console.get("/api/runs/not_ours/x"), 404, "not a crmsync DAG")
    refused_json(console.post("/api/trigger", content=b"{not json", headers={"Content-Type": "application/json"}),
                 422, "is not valid JSON")
    refused_json(console.post("/api/trigger", data={"dag_id": "crm_pull_customers"}), 415, "application/json")


def test_a_2_mb_body_is_refused_before_it_is_read(console):
    big = {"dag_id": "crm_pull_customers", "conf": {"customer_ids": list(range(300_000))}}
    assert len(json.dumps(big)) > 2_000_000
    refused_json(console.post("/api/trigger", json=big), 413, "at most 256,000 bytes")

    def chunks():  # no Content-Length: the limit holds on what arrives
        yield b'{"error_ids": ['
        for _ in range(200):
            yield b"1," * 5000
        yield b"1]}"

    refused_json(console.post("/api/errors/ignore", content=chunks(), headers={"Content-Type": "application/json"}),
                 413, "at most 256,000 bytes")


def test_a_2_mb_trigger_and_hostile_triggers_get_4xx_and_the_right_ones_are_kept(server):
    server.seed()
    url = f"{server.console_url}/webhooks/sumit/{TOKEN}"
    big = json.dumps({"EntityID": 1, "Type": "Update", "Folder": "x" * 2_000_000})
    assert httpx.post(url, content=big, headers={"Content-Type": "application/json"}, timeout=30).status_code == 413
    before = server.rejected_triggers()
    nul = httpx.post(url, json=[1, 2, "Update", {}, "extra"], timeout=30)
    assert nul.status_code == 400 and "positional trigger has 5 items" in nul.text
    assert server.rejected_triggers() == before + 1
    # a NUL or a lone surrogate where the receiver reads text is dropped, not a 503
    kept = httpx.post(url, content=b'{"EntityID": 77, "Type": "Update", "Folder": "cust\\u0000om\\ud800"}',
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert kept.status_code == 202, kept.text
    with server.pg.connect() as conn:
        assert conn.execute("SELECT folder FROM crm_inbox WHERE entity_id = '77'").fetchone()[0] == "custom\ufffd"
    server.delete_new_runs()
    for wrong in ("x" * 5000, TOKEN + "x", "%00"):
        assert httpx.post(f"{server.console_url}/webhooks/sumit/{wrong}", json={"EntityID": 1},
                          timeout=30).status_code == 404


def test_a_user_who_may_not_read_the_crmsync_dags_gets_403_everywhere(server):
    server.seed()
    before = server.writes()
    headers = {"Authorization": f"Bearer {server.nobody_token}"}
    with httpx.Client(base_url=server.console_url, timeout=30, headers=headers) as nobody:
        for path in ("/customers", "/customers/1", "/runs", "/errors", "/conflicts", "/matches", "/mass-changes",
                     "/run/crm_pull_customers/x"):
            page = refused_page(nobody.get(path), 403, "You may not read the crmsync DAGs")
            assert not any(name in page for name, _, _ in CUSTOMERS)
        refused_json(nobody.get("/api/runs/crm_pull_customers/x"), 403, "You may not read")
        refused_json(nobody.post("/api/trigger", json={"dag_id": "crm_pull_customers"}), 403, "You may not read")
        refused_json(nobody.post("/api/errors/ignore", json={"error_ids": [1]}), 403, "You may not read")
    # ... while a viewer reads every page and may start nothing
    with httpx.Client(base_url=server.console_url, timeout=30,
                      headers={"Authorization": f"Bearer {server.viewer_token}"}) as viewer:
        assert "Dana Levi" in viewer.get("/customers").text
        refused_json(viewer.post("/api/trigger", json={"dag_id": "crm_pull_customers"}), 403, "can only read")
        refused_json(viewer.post("/api/errors/ignore", json={"error_ids": [1]}), 403, "can only read")
    assert server.writes() == before


def test_a_run_airflow_refuses_leaves_a_paused_dag_paused(console, server):
    """unpause=true with a conf Airflow refuses: no run and the DAG still paused."""
    assert server.paused()["crm_push_customers"] is True
    answer = console.post("/api/trigger", json={"dag_id": "crm_push_customers", "conf": {}, "unpause": True})
    assert answer.status_code == 400 and "customer_ids" in answer.text, answer.text
    assert server.paused()["crm_push_customers"] is True
