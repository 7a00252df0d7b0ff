"""`make check-connection`: one read-only call, and a plain reason when it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from crmsync.testing.airflow_env import PROJECT_ROOT

KEY = "check-conn-key-93b1"


@pytest.fixture(scope="module")
def sandbox():
    from crmsync.sandbox.control import run_sandbox_process

    with run_sandbox_process(company_id=1000, api_key=KEY) as server:
        yield server


def check(url, login="1000", key=KEY, **extra):
    conn = {"conn_type": "sumit", "host": url, "login": login, "password": key,
            "extra": {"max_attempts": 1, "connect_timeout": 2, **extra}}
    env = dict(os.environ, AIRFLOW_CONN_SUMIT_DEFAULT=json.dumps(conn))
    result = subprocess.run([sys.executable, "scripts/check_connection.py"], env=env, capture_output=True, text=True,
                            cwd=PROJECT_ROOT)
    output = result.stdout + result.stderr
    assert KEY not in output
    return result.returncode, result.stdout


@pytest.mark.parametrize("extra", [{"api_profile": "guide"}, {"api_profile": "rest", "customers_folder": "customers"}])
def test_good_connection_says_ok_and_makes_one_read_only_call(sandbox, extra):
    before = len(sandbox.control.requests())
    code, out = check(sandbox.url, **extra)
    assert code == 0 and "OK: Connected to SUMIT" in out
    calls = sandbox.control.requests()[before:]
    assert len(calls) == 1 and calls[0]["path"] in ("/website/customers/getlist/", "/crm/data/listentities/")


@pytest.mark.parametrize("case, words", [
    ({"key": "wrong-key"}, "refused the credentials"),
    ({"login": "acme"}, "numeric SUMIT CompanyID"),
    ({"api_profile": "rest"}, "needs extra.customers_folder"),
    ({"api_profile": "rest", "customers_folder": "nope"}, "Folder 'nope' not found"),
    ({"url": "http://127.0.0.1:9"}, "connection refused"),
])
def test_bad_connection_says_what_is_wrong(sandbox, case, words):
    case = dict(case)
    url = case.pop("url", sandbox.url)
    code, out = check(url, **case)
    assert code == 1 and "FAILED" in out and words in out
