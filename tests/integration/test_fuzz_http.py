"""No input reaches a 500: the console's and the receiver's own OpenAPI description fuzzed by
Schemathesis, through Airflow's api-server app served by uvicorn on a real socket (the
console mounted at /crmsync by crmsync's plugin, Airflow's login and permissions, Airflow's
REST API answering the console's own calls), against the real customers database.

Every operation is tried with a logged-in admin, with no login at all, and (the receiver) with
the right token. Schemathesis checks each answer: no 5xx, a documented status code and
content type, a body matching the declared schema, and invalid input refused. On top of that,
a refused request wrote nothing and started no run. test_edge_inputs.py holds what a schema
cannot express (a NUL in a search, the largest integers, a 2 MB body).
"""

from __future__ import annotations

import json
import os
import secrets

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance
from hypothesis import HealthCheck, settings

from console_server import CUSTOMERS, ConsoleServer

pytestmark = pytest.mark.usefixtures("fuzz_env")

TOKEN = secrets.token_urlsafe(24)
FUZZ = settings(max_examples=int(os.environ.get("CRMSYNC_FUZZ_EXAMPLES", "60")), deadline=None, derandomize=False,
                suppress_health_check=list(HealthCheck), database=None)


def _schema():
    from crmsync.console.app import app

    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(app.openapi())))
    # Unknown query parameters are ignored, as every web page does (a link with a tracking
    # parameter still opens): not a refusal the fuzzer should demand.
    loaded.config.generation.update(allow_extra_parameters=False,
                                    with_security_parameters=False)  # the login is the test's: a token or none
    return loaded


schema = _schema()
console_ops = schema.exclude(path_regex="^/webhooks/")
receiver_ops = schema.include(path_regex="^/webhooks/")


@pytest.fixture(scope="module")
def server(pg, sandbox, dagbag):
    with ConsoleServer(pg, dagbag, webhook_token=TOKEN) as running:
        yield running


@pytest.fixture
def fuzz_env(server):
    server.seed()  # tables, customers, a retry-queue record, a conflict, a held match: something to read
    yield


def _check(case, server, headers):
    before = server.writes()
    response = case.call(base_url=server.console_url, headers=headers, timeout=30)
    excluded = []
    if case.path in ("/api/trigger", "/webhooks/sumit/{token}"):
        # What the schema cannot say: Airflow checks a run's conf against the DAG's params (a conf
        # the schema allows may get Airflow's 400, its reason passed on), and a form's `json`
        # field must hold a JSON trigger.
        excluded.append(positive_data_acceptance)
    case.validate_response(response, headers=headers, excluded_checks=excluded)
    if 400 <= response.status_code < 500:
        after = server.writes()
        if case.path.startswith("/webhooks/") and response.status_code == 400:
            # a body the receiver cannot read is kept for a person, as one rejected row: nothing else
            assert after[3] == before[3] + 1, "a refused trigger was not recorded as rejected"
            after = after[:3] + (before[3],)
        assert after == before, f"a refused {case.method} {case.formatted_path} wrote or started something"
    return response


@console_ops.parametrize()
@FUZZ
def test_a_logged_in_admin_gets_no_server_error(case, server):
    _check(case, server, {"Authorization": f"Bearer {server.admin_token}"})


@console_ops.parametrize()
@settings(FUZZ, max_examples=max(FUZZ.max_examples // 3, 10))
def test_no_login_gets_no_server_error_and_reads_nothing(case, server):
    response = _check(case, server, {})
    assert 400 <= response.status_code < 500, response.text[:300]  # 401 mostly; 405, 415, 422 before the login check
    assert not any(name in response.text for name, _, _ in CUSTOMERS), "a page showed customers without a login"


@receiver_ops.parametrize()
@FUZZ
def test_the_receiver_with_its_token_gets_no_server_error(case, server):
    case.path_parameters = {**(case.path_parameters or {}), "token": TOKEN}  # wrong tokens: test_edge_inputs
    _check(case, server, {})
