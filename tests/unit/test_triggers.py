"""Reading SUMIT's triggers (crmsync.core.triggers), the receiver's settings (crmsync.airflow_side.webhook_settings)
and the sumit_customers asset's URI and extra (crmsync.core.assets): pure logic, no server."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from crmsync.airflow_side.webhook_settings import WebhookSettings
from crmsync.core.assets import change_extra, customers_asset_uri
from crmsync.core.errors import ConfigurationError
from crmsync.core.triggers import (
    MAX_BODY_BYTES,
    MalformedTrigger,
    TriggerEvent,
    excerpt,
    hide_token,
    parse_body,
    receiver_url,
)

FORM = "application/x-www-form-urlencoded"
TOKEN = "t0k3n-" + "x" * 30


def form(value) -> bytes:
    return urlencode({"json": json.dumps(value, ensure_ascii=False)}).encode()


def test_both_of_sumits_shapes_in_a_form_post():
    assert parse_body(form({"Folder": "customers", "Type": "Update", "EntityID": 1042}), FORM) == [
        TriggerEvent("1042", "update", "customers", "object")]
    assert parse_body(form(["customers", "77", "Delete", {}]), f"{FORM}; charset=utf-8") == [
        TriggerEvent("77", "delete", "customers", "array")]


def test_a_json_body_a_list_and_types_in_any_spelling():
    events = parse_body(json.dumps([{"folder": 5, "type": "createOrUpdate", "entityId": "9"},
                                    [5, 10, "ARCHIVE", {"Customers_FullName": ["x"]}],
                                    {"Folder": 5, "Type": "Renamed", "EntityID": 11}]).encode(), "application/json")
    assert [(e.entity_id, e.action, e.folder, e.shape) for e in events] == [
        ("9", "update", "5", "object"), ("10", "archive", "5", "array"), ("11", "change", "5", "object")]


def test_a_form_post_without_its_content_type_is_still_read():
    assert parse_body(form({"Folder": "c", "Type": "Create", "EntityID": 3}), None)[0].entity_id == "3"


@pytest.mark.parametrize("body, content_type, reason", [
    (b"", FORM, "no field 'json'"),
    (b"name=x", FORM, "no field 'json'"),
    (form("just text"), FORM, "not an object or an array"),
    (b"json=%7Bnot+json", FORM, "not JSON"),
    (form({"Folder": "c", "Type": "Update"}), FORM, "no EntityID"),
    (form({"Folder": "c", "Type": "Update", "EntityID": None}), FORM, "no EntityID"),
    (form({"Folder": "c", "Type": "Update", "EntityID": {"ID": 1}}), FORM, "no EntityID"),
    (form({"Folder": "c", "Type": "Update", "EntityID": True}), FORM, "no EntityID"),
    (form({"Folder": "c", "Type": "Update", "EntityID": "9" * 300}), FORM, "not an id"),
    (form(["c", 5]), FORM, "has 2 items"),
    (form([]), FORM, "has 0 items"),
    (b"\xff\xfe", "application/json", "not UTF-8"),
    (b"{" * (MAX_BODY_BYTES + 1), "application/json", "more than 1,000,000"),
    (json.dumps([{"EntityID": n} for n in range(1001)]).encode(), "application/json", "more than 1000"),
])
def test_what_is_not_a_trigger_is_refused_with_the_reason(body, content_type, reason):
    with pytest.raises(MalformedTrigger, match=reason):
        parse_body(body, content_type)


def test_one_bad_trigger_in_a_list_refuses_the_whole_body():
    with pytest.raises(MalformedTrigger, match="no EntityID"):
        parse_body(json.dumps([{"EntityID": 1, "Type": "Update"}, {"Type": "Update"}]).encode(), "application/json")


def test_a_refused_body_is_kept_short_and_readable():
    text = excerpt(("שלום " * 500).encode() + b"\xff")
    assert len(text) == 300 and text.startswith("שלום")


def test_the_receiver_url_and_its_shown_form():
    url = receiver_url("https://airflow.example.com/", TOKEN)
    assert url == f"https://airflow.example.com/crmsync/webhooks/sumit/{TOKEN}"
    assert hide_token(url) == "https://airflow.example.com/crmsync/webhooks/sumit/***"
    assert TOKEN not in hide_token(url)


def test_webhook_settings_want_a_long_url_safe_token_and_a_public_url():
    settings = WebhookSettings.from_connection("crmsync_webhook", password=TOKEN, host=None,
                                               extra={"public_url": "https://airflow.example.com"})
    assert settings.url("crmsync_webhook").endswith(f"/webhooks/sumit/{TOKEN}")
    assert TOKEN not in repr(settings)
    for bad in (None, "", "short", "x" * 23, "a/b" + "x" * 30, "a b" + "x" * 30):
        with pytest.raises(ConfigurationError, match="at least 24 characters") as caught:
            WebhookSettings.from_connection("crmsync_webhook", password=bad, host=None, extra=None)
        assert not bad or bad not in str(caught.value)
    with pytest.raises(ConfigurationError, match="public_url must be"):
        WebhookSettings.from_connection("crmsync_webhook", password=TOKEN, host=None, extra={"public_url": "ftp://x"})
    receiver_only = WebhookSettings.from_connection("crmsync_webhook", password=TOKEN, host=None, extra="")
    with pytest.raises(ConfigurationError, match="no extra.public_url"):
        receiver_only.url("crmsync_webhook")


def test_the_asset_uri_is_the_postgres_providers_form():
    assert customers_asset_uri("db.internal", None, "crm") == "postgres://db.internal:5432/crm/public/sumit_customers"
    assert customers_asset_uri("127.0.0.1", 6543, "customers") == "postgres://127.0.0.1:6543/customers/public/sumit_customers"
    assert customers_asset_uri("::1", 5432, "crm") == "postgres://[::1]:5432/crm/public/sumit_customers"
    assert customers_asset_uri("/var/run/postgresql", None, "crm") == \
        "postgres://%2Fvar%2Frun%2Fpostgresql:5432/crm/public/sumit_customers"
    with pytest.raises(ValueError, match="no host"):
        customers_asset_uri(None, 5432, "crm")
    with pytest.raises(ValueError, match="names no database"):
        customers_asset_uri("db", 5432, "")


def test_an_event_extra_only_when_something_changed():
    ids = {"dag_id": "crm_pull_customers", "run_id": "manual__1", "task_id": "pull_from_crm", "operation": "pull"}
    assert change_extra({"fetched": 100, "unchanged": 100, "changed": 0}, **ids) is None
    assert change_extra({"created": 2, "updated": 1, "changed": 3, "fetched": 9}, **ids) == {
        **ids, "created": 2, "updated": 1, "vanished": 0, "changed": 3}
    assert change_extra({"vanished": 1}, **ids)["vanished"] == 1


def test_the_apply_runs_summary_line():
    from crmsync.core.summary import SyncCounts, summary_line

    counts = SyncCounts(fetched=12, created=2, updated=3, vanished=1, changed=6)
    assert summary_line("events", counts, status="success") == \
        "Apply CRM events completed. Read: 12, Missing in the CRM: 1, Changed: 6"
