"""SUMIT's triggers in, through Airflow: crm_inbox as the receiver fills it, crm_apply_crm_events
reading each named customer fresh from the sandbox (rest profile) and merging it, and the
sumit_customers asset events the writing tasks add (or do not add)."""

from __future__ import annotations

import json

import pytest

from conftest import set_sumit_connection
from crmsync.core.triggers import TriggerEvent
from crmsync.db import inbox
from crmsync.db.store import CustomerStore, RunRef
from test_dags import ensure_schema, rows

pytestmark = pytest.mark.usefixtures("rest_env")
GET_PATH = "/crm/data/getentity/"
LIST_PATH = "/crm/data/listentities/"


def receive(pg, *events: tuple[str, str], folder: str = "customers") -> tuple[int, int]:
    with pg.connect() as conn:
        return inbox.receive(conn, [TriggerEvent(str(entity), action, folder, "object") for entity, action in events])


def inbox_rows(pg):
    return rows(pg, "SELECT entity_id, action, status, hits, attempts, reason FROM crm_inbox ORDER BY id")


def customer(pg, sumit_id):
    found = rows(pg, "SELECT name, city, metadata FROM sumit_customers WHERE sumit_customer_id = %s", str(sumit_id))
    return found[0] if found else None


def paths(sandbox):
    return [r["path"] for r in sandbox.control.requests()]


def seed(sandbox, run_dag, count=4):
    ids = sandbox.control.add_customers([{"Name": f"Trigger {n} Ltd", "Email": f"t{n}@example.co.il", "City": "Tel Aviv"}
                                         for n in range(count)])
    assert run_dag("crm_pull_customers") == "success"
    return [str(i) for i in ids]


def test_each_trigger_is_read_fresh_and_merged_gone_ones_flagged(pg, sandbox, run_dag):
    ids = seed(sandbox, run_dag)
    sandbox.control.edit([{"CustomerID": ids[0], "City": "Haifa"}])
    new_id = str(sandbox.control.add_customers([{"Name": "ש.ב. שירותים בע\"מ", "Email": "new@example.co.il"}])[0])
    sandbox.control.delete([ids[1]])
    sandbox.control.archive([ids[2]])
    before = len(sandbox.control.requests())
    # the hint's Type is not trusted: ids[0] says "create", the data read fresh says Haifa
    receive(pg, (ids[0], "create"), (new_id, "create"), (ids[1], "delete"), (ids[2], "archive"))
    receive(pg, ("999", "update"), folder="another-folder")

    assert run_dag("crm_apply_crm_events") == "success"

    assert customer(pg, ids[0])[1] == "Haifa"
    assert customer(pg, new_id)[0] == "ש.ב. שירותים בע\"מ"
    assert "crm_missing_since" in customer(pg, ids[1])[2] and "crm_missing_since" in customer(pg, ids[2])[2]
    assert "crm_missing_since" not in customer(pg, ids[3])[2]  # untouched: no trigger named it
    requests = paths(sandbox)[before:]
    assert requests.count(GET_PATH) == 4 and LIST_PATH not in requests  # the named ones only, not a full pull
    statuses = {r[0]: (r[2], r[5]) for r in inbox_rows(pg)}
    assert [statuses[i][0] for i in (ids[0], new_id, ids[1], ids[2])] == ["applied"] * 4
    assert statuses["999"][0] == "ignored" and "another-folder" in statuses["999"][1]
    journal = rows(pg, "SELECT direction, count(*) FROM crm_sync_history WHERE dag_id = 'crm_apply_crm_events' "
                       "GROUP BY 1")
    assert journal == [("pull", 4)]  # one update, one creation, two flagged: revertible like a pull's
    run = rows(pg, "SELECT operation, status, fetched, created, updated, vanished, changed FROM crm_sync_runs "
                   "WHERE dag_id = 'crm_apply_crm_events'")
    assert run == [("events", "success", 2, 1, 1, 2, 4)]


def test_a_customer_back_in_sumit_is_unflagged(pg, sandbox, run_dag):
    ids = seed(sandbox, run_dag, 2)
    sandbox.control.archive([ids[0]])
    receive(pg, (ids[0], "archive"))
    assert run_dag("crm_apply_crm_events") == "success"
    assert "crm_missing_since" in customer(pg, ids[0])[2]
    sandbox.control.add_customers([{"CustomerID": ids[0], "Name": "Trigger 0 Ltd", "Email": "t0@example.co.il",
                                    "City": "Eilat"}])  # un-archived, and changed
    receive(pg, (ids[0], "update"))
    assert run_dag("crm_apply_crm_events") == "success"
    name, city, metadata = customer(pg, ids[0])
    assert city == "Eilat" and "crm_missing_since" not in metadata


def test_triggers_for_a_waiting_customer_collapse_and_one_that_comes_mid_run_stays_pending(pg, sandbox, run_dag):
    ensure_schema(pg)
    assert receive(pg, ("7", "create"), ("7", "update")) == (1, 1)  # one request repeating an id
    assert receive(pg, ("7", "update"), ("8", "update")) == (1, 1)
    assert [(r[0], r[1], r[3]) for r in inbox_rows(pg)] == [("7", "update", 3), ("8", "update", 1)]
    with CustomerStore(pg.connect(), RunRef("crm_apply_crm_events", "manual__test")) as store:
        read = inbox.pending(store, after_id=0, limit=10)
        receive(pg, ("7", "delete"))  # arrives while the run works on what it read
        closed = inbox.close(store, [inbox.Closing(t, inbox.APPLIED) for t in read])
        store.commit()
    assert closed == {read[1].id}
    assert [(r[0], r[1], r[2], r[3]) for r in inbox_rows(pg)] == [("7", "delete", "pending", 4), ("8", "update", "applied", 1)]


def test_unreadable_customers_keep_their_triggers_until_read_then_give_up(pg, sandbox, run_dag):
    ids = seed(sandbox, run_dag, 2)
    sandbox.control.edit([{"CustomerID": ids[0], "City": "Acre"}, {"CustomerID": ids[1], "City": "Acre"}])
    receive(pg, (ids[0], "update"), (ids[1], "update"))
    sandbox.control.set_faults(fail_next={"count": 1000, "status": 503, "endpoint": GET_PATH})
    assert run_dag("crm_apply_crm_events", {"max_record_attempts": 2}) == "success"  # a warning: nothing lost
    assert [(r[2], r[4]) for r in inbox_rows(pg)] == [("pending", 1), ("pending", 1)]
    assert customer(pg, ids[0])[1] == "Tel Aviv"
    assert "could not read" in rows(pg, "SELECT message FROM crm_sync_runs ORDER BY id DESC LIMIT 1")[0][0]

    run_dag("crm_apply_crm_events", {"max_record_attempts": 2})  # the second failed attempt: given up
    assert [(r[2], r[4]) for r in inbox_rows(pg)] == [("rejected", 2), ("rejected", 2)]
    queued = rows(pg, "SELECT phase, sumit_customer_id, status FROM crm_sync_errors ORDER BY sumit_customer_id")
    assert queued == sorted([("pull", ids[0], "pending"), ("pull", ids[1], "pending")], key=lambda r: r[1])
    sandbox.control.clear_faults()
    assert run_dag("crm_pull_customers") == "success"  # the nightly full pull catches what the triggers missed
    assert customer(pg, ids[0])[1] == "Acre"


def test_wrong_credentials_fail_the_run_and_keep_every_trigger(pg, sandbox, run_dag):
    ids = seed(sandbox, run_dag, 1)
    receive(pg, (ids[0], "update"))
    set_sumit_connection(sandbox.url, api_key="wrong-key-" + "x" * 20)
    assert run_dag("crm_apply_crm_events") == "failed"
    assert [(r[2], r[4]) for r in inbox_rows(pg)] == [("pending", 0)]
    assert "credentials" in rows(pg, "SELECT message FROM crm_sync_runs ORDER BY id DESC LIMIT 1")[0][0]


def test_the_guide_profile_is_told_triggers_need_the_rest_api(pg, sandbox, run_dag):
    ids = seed(sandbox, run_dag, 1)
    receive(pg, (ids[0], "update"))
    set_sumit_connection(sandbox.url, profile="guide")
    assert run_dag("crm_apply_crm_events") == "failed"
    message = rows(pg, "SELECT message FROM crm_sync_runs ORDER BY id DESC LIMIT 1")[0][0]
    assert 'api_profile to "rest"' in message
    assert [r[2] for r in inbox_rows(pg)] == ["pending"]


def test_a_burst_that_is_a_mass_change_is_held_back_for_the_nightly_sync_and_a_person(pg, sandbox, run_dag):
    ids = seed(sandbox, run_dag, 150)
    sandbox.control.archive(ids[:5])
    receive(pg, *[(i, "archive") for i in ids[:5]])
    assert run_dag("crm_apply_crm_events") == "success"  # 5 of 150: an ordinary change
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE metadata ? 'crm_missing_since'") == [(5,)]

    sandbox.control.archive(ids[5:])  # someone archives everything else in SUMIT
    receive(pg, *[(i, "archive") for i in ids[5:]])
    assert run_dag("crm_apply_crm_events", {"min_mass_change": 100}) == "success"
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE metadata ? 'crm_missing_since'") == [(5,)]
    held = rows(pg, "SELECT status, reason FROM crm_inbox WHERE status NOT IN ('applied')")
    assert len(held) == 145 and {status for status, _ in held} == {"held"}
    assert "it would flag 145 of the 150 existing customers as no longer in the CRM" in held[0][1], held[0][1]
    assert rows(pg, "SELECT status FROM crm_sync_runs ORDER BY id DESC LIMIT 1") == [("warning",)]
    assert rows(pg, "SELECT count(*) FROM crm_sync_history WHERE dag_run_id = "
                    "(SELECT dag_run_id FROM crm_sync_runs ORDER BY id DESC LIMIT 1)") == [(0,)]


# -- the sumit_customers asset -------------------------------------------------------------------

def asset_events():
    from sqlalchemy import select

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        found = session.execute(select(AssetModel.name, AssetModel.uri, AssetEvent.extra, AssetEvent.source_task_id)
                                .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
                                .where(AssetModel.name == "sumit_customers").order_by(AssetEvent.id)).all()
    return [tuple(row) for row in found]


def test_a_run_that_changed_customers_adds_an_asset_event_one_that_did_not_adds_none(pg, sandbox, run_dag):
    before = len(asset_events())
    ids = seed(sandbox, run_dag, 3)
    events = asset_events()[before:]
    assert len(events) == 1
    name, uri, extra, task_id = events[0]
    assert (name, task_id) == ("sumit_customers", "pull_from_crm")
    assert uri == f"postgres://{pg.host}:{pg.port}/{pg.dbname}/public/sumit_customers"
    assert {k: extra[k] for k in ("dag_id", "operation", "created", "updated", "vanished", "changed")} == {
        "dag_id": "crm_pull_customers", "operation": "pull", "created": 3, "updated": 0, "vanished": 0, "changed": 3}

    assert run_dag("crm_pull_customers") == "success"  # nothing changed in SUMIT
    assert run_dag("crm_bidirectional_sync") == "success"  # nor locally
    assert len(asset_events()) == before + 1

    sandbox.control.edit([{"CustomerID": ids[0], "City": "Nazareth"}])
    receive(pg, (ids[0], "update"))
    assert run_dag("crm_apply_crm_events") == "success"
    name, uri, extra, task_id = asset_events()[-1]
    assert task_id == "apply_crm_events" and extra["operation"] == "events" and extra["updated"] == 1
    assert len(asset_events()) == before + 2
    assert run_dag("crm_apply_crm_events") == "success"  # an empty inbox: no event
    assert len(asset_events()) == before + 2
    assert json.dumps(asset_events()).count("APIKey") == 0


# -- crm_sumit_triggers ---------------------------------------------------------------------------

def test_subscribe_show_and_unsubscribe_through_the_dag_without_the_token_anywhere(pg, sandbox, run_dag, monkeypatch):
    import hashlib
    import secrets

    token = secrets.token_urlsafe(32)
    monkeypatch.setenv("AIRFLOW_CONN_CRMSYNC_WEBHOOK", json.dumps(
        {"conn_type": "generic", "password": token, "extra": {"public_url": "http://airflow.example:8080"}}))
    url = f"http://airflow.example:8080/crmsync/webhooks/sumit/{token}"
    assert run_dag("crm_sumit_triggers", {"action": "subscribe", "trigger_types": ["CreateOrUpdate", "Delete"],
                                          "view": "All customers"}) == "success"
    subscriptions = sandbox.control.triggers()["subscriptions"]
    assert sorted((s["TriggerType"], s["View"], s["url_sha256"]) for s in subscriptions) == [
        ("CreateOrUpdate", "All customers", hashlib.sha256(url.encode()).hexdigest()),
        ("Delete", "All customers", hashlib.sha256(url.encode()).hexdigest())]
    recorded = rows(pg, "SELECT url_shown, trigger_type, view FROM crm_sumit_subscriptions ORDER BY trigger_type")
    assert recorded == [("http://airflow.example:8080/crmsync/webhooks/sumit/***", "CreateOrUpdate", "All customers"),
                        ("http://airflow.example:8080/crmsync/webhooks/sumit/***", "Delete", "All customers")]
    assert run_dag("crm_sumit_triggers") == "success"  # show
    assert xcom_text("crm_sumit_triggers").count("/webhooks/sumit/***") == 4  # subscribe and show, two each
    # Every column of every row, scanned while the table holds the subscriptions (unsubscribe empties it).
    subscribed = rows(pg, "SELECT row_to_json(s)::text FROM crm_sumit_subscriptions s")
    assert len(subscribed) == 2 and token not in json.dumps(subscribed), subscribed
    assert run_dag("crm_sumit_triggers", {"action": "unsubscribe"}) == "success"
    assert sandbox.control.triggers()["subscriptions"] == []
    assert rows(pg, "SELECT count(*) FROM crm_sumit_subscriptions") == [(0,)]
    everything = json.dumps(rows(pg, "SELECT * FROM crm_sumit_subscriptions")) + xcom_text("crm_sumit_triggers")
    assert token not in everything


def test_subscribing_without_a_public_url_says_what_to_set(pg, sandbox, run_dag, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CRMSYNC_WEBHOOK", json.dumps({"conn_type": "generic", "password": "x" * 40}))
    assert run_dag("crm_sumit_triggers", {"action": "subscribe"}) == "failed"
    assert sandbox.control.triggers()["subscriptions"] == []


def xcom_text(dag_id: str) -> str:
    from sqlalchemy import select

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        values = session.scalars(select(XComModel.value).where(XComModel.dag_id == dag_id)).all()
    return json.dumps([str(v) for v in values])


def test_a_new_customer_that_may_be_a_local_one_is_held_for_the_next_pull(pg, sandbox, run_dag):
    """A trigger sees one customer, never all its candidates: one that shares a key with an
    unlinked local customer is not inserted (no twin); the next full pull links the pair."""
    seed(sandbox, run_dag, count=1)
    local_id = rows(pg, "INSERT INTO sumit_customers (name, email) VALUES ('Local Dana', 'dana@example.co.il')"
                        " RETURNING id")[0][0]
    new_id = str(sandbox.control.add_customers([{"Name": "Dana", "Email": "Dana@Example.co.il", "City": "Acre"}])[0])
    receive(pg, (new_id, "create"))

    assert run_dag("crm_apply_crm_events") == "success"
    assert customer(pg, new_id) is None  # not inserted
    assert [(r[0], r[2]) for r in inbox_rows(pg)] == [(new_id, "held")]
    assert "next full pull" in inbox_rows(pg)[0][5]

    assert run_dag("crm_pull_customers") == "success"
    assert rows(pg, "SELECT sumit_customer_id, city FROM sumit_customers WHERE id = %s", local_id) == [(new_id, "Acre")]
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE sumit_customer_id = %s", new_id) == [(1,)]
