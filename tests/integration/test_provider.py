"""The `sumit` connection type is registered the Airflow 3 way: crmsync is an installed
distribution whose `apache_airflow_provider` entry point Airflow's own ProvidersManager reads,
the connection form the UI is served is SUMIT's, and the Test button reaches SumitHook."""

from __future__ import annotations

import json
import secrets

import pytest

from conftest import API_KEY, COMPANY_ID

NOT_INSTALLED = "crmsync is not installed as a distribution: run `make bootstrap` (pip install --no-deps -e .)"


@pytest.fixture(scope="module")
def providers():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "crmsync" in manager.providers, NOT_INSTALLED
    return manager


def test_crmsync_is_an_airflow_provider_declaring_the_sumit_connection_type(providers):
    info = providers.providers["crmsync"]
    from importlib.metadata import version

    assert info.version == version("crmsync") and info.data["versions"] == [version("crmsync")]  # from the metadata
    [connection_type] = info.data["connection-types"]
    assert connection_type["connection-type"] == "sumit"
    assert connection_type["hook-class-name"] == "crmsync.hooks.sumit.SumitHook"


def test_a_sumit_connection_gets_a_sumit_hook_as_the_api_server_builds_it(providers):
    from airflow.models.connection import Connection

    from crmsync.hooks.sumit import SumitHook

    hook = Connection(conn_id="any_sumit", conn_type="sumit").get_hook()
    assert type(hook) is SumitHook and hook.sumit_conn_id == "any_sumit"


def _sumit_form():
    """The connection form metadata the UI is served (GET /ui/connections/hook_meta)."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    [form] = [meta for meta in HookMetaService.hook_meta_data() if meta.connection_type == "sumit"]
    return form


def test_the_ui_form_relabels_the_standard_fields_and_hides_schema_and_port(providers):
    form = _sumit_form()
    assert form.hook_name == "SUMIT CRM" and form.hook_class_name == "crmsync.hooks.sumit.SumitHook"
    fields = form.standard_fields
    assert (fields.host.title, fields.host.placeholder) == ("SUMIT API base URL", "https://api.sumit.co.il")
    assert fields.login.title == "Company ID" and fields.password.title == "API key"
    assert fields.url_schema.hidden and fields.port.hidden
    assert not fields.host.hidden and not fields.login.hidden and not fields.password.hidden


def test_the_ui_form_offers_the_sumit_extra_fields(providers):
    extra = _sumit_form().extra_fields
    assert set(extra) == {"api_profile", "customers_folder", "connect_timeout", "read_timeout", "page_size",
                          "push_concurrency", "language"}
    profile = extra["api_profile"]
    assert profile["value"] == "guide" and profile["schema"]["enum"] == ["guide", "rest"]
    assert profile["schema"]["title"] == "API profile"
    assert extra["customers_folder"]["schema"]["title"] == "Customers folder"
    assert extra["page_size"]["value"] == 1000 and extra["push_concurrency"]["value"] == 12
    # The fields land in extra under their plain names: the keys SumitSettings reads.
    from crmsync.sumit.connection import SumitSettings

    known = {f for f in SumitSettings.__dataclass_fields__}
    assert set(extra) <= known


def test_what_the_form_stores_is_read_including_empty_fields_and_airflow2_prefixed_keys():
    from crmsync.sumit.connection import SumitSettings

    form_extra = {"api_profile": "rest", "customers_folder": "customers", "connect_timeout": None,
                  "read_timeout": 30, "page_size": None, "push_concurrency": "", "language": None,
                  "max_attempts": 3}
    settings = SumitSettings.from_connection("sumit_default", host=None, login="1000", password="k",
                                             extra=form_extra)
    assert (settings.api_profile, settings.customers_folder, settings.read_timeout) == ("rest", "customers", 30)
    assert (settings.connect_timeout, settings.page_size, settings.push_concurrency) == (10.0, 1000, 12)
    assert settings.max_attempts == 3 and settings.language is None

    legacy = {"extra__sumit__api_profile": "rest", "extra__sumit__customers_folder": "legacy",
              "customers_folder": "plain", "extra__sumit__page_size": "200"}
    settings = SumitSettings.from_connection("sumit_default", host=None, login="1000", password="k", extra=legacy)
    assert (settings.api_profile, settings.customers_folder, settings.page_size) == ("rest", "plain", 200)


# -- the Test button --------------------------------------------------------------------------


@pytest.fixture
def connection_testing_enabled(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")


def _press_test(client, sandbox_url: str, api_key: str) -> dict:
    body = {"connection_id": "sumit_form_" + secrets.token_hex(4), "conn_type": "sumit", "host": sandbox_url,
            "login": str(COMPANY_ID), "password": api_key,
            "extra": json.dumps({"api_profile": "guide", "customers_folder": None, "page_size": None})}
    response = client.post("/api/v2/connections/test", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def api_client(providers, dagbag):
    """Airflow's own API server app (the one behind the UI), in-process, every caller an admin."""
    from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        with TestClient(create_app(apps="core")) as client:
            yield client


def test_the_test_button_is_disabled_unless_the_deployment_enables_it(api_client, sandbox, monkeypatch):
    monkeypatch.delenv("AIRFLOW__CORE__TEST_CONNECTION", raising=False)
    response = api_client.post("/api/v2/connections/test", json={"connection_id": "x", "conn_type": "sumit"})
    assert response.status_code == 403 and "disabled" in response.text


def test_the_test_button_connects_to_sumit_with_one_read_only_call(api_client, sandbox, connection_testing_enabled):
    sandbox.control.reset()
    result = _press_test(api_client, sandbox.url, API_KEY)
    assert result == {"status": True,
                      "message": f"Connected to SUMIT at {sandbox.url} as CompanyID {COMPANY_ID}."}
    assert [r["path"] for r in sandbox.control.requests()] == ["/website/customers/getlist/"]


def test_the_test_button_says_the_key_is_wrong_without_showing_it(api_client, sandbox, connection_testing_enabled):
    wrong_key = "wrong-" + secrets.token_hex(12)
    result = _press_test(api_client, sandbox.url, wrong_key)
    assert result["status"] is False
    assert "refused the credentials" in result["message"] and "API key" in result["message"]
    assert wrong_key not in result["message"] and API_KEY not in result["message"]


def test_the_console_plugin_comes_from_the_entry_point_once_with_no_import_error():
    """The checkout as `make airflow` and the suite run it (plugins/ on sys.path, the editable
    install's entry points): Airflow loads crmsync_console once, from the installed
    distribution's `airflow.plugins` entry point, and records no plugin import error (a second
    copy of the metadata beside the package would load it twice: the Makefile removes it)."""
    import subprocess
    import sys

    code = ("from airflow import plugins_manager as pm; import json; plugins, errors = pm._get_plugins(); "
            "print(json.dumps({'plugins': [[p.name, str(p.source)] for p in plugins], 'errors': errors}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    [(name, source)] = [p for p in found["plugins"] if p[0] == "crmsync_console"]
    assert "crmsync.console.plugin:CrmSyncConsolePlugin" in source and "airflow.plugins" in source
