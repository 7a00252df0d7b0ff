"""The sandbox's triggers (webhooks) and single-entity read, over real HTTP both ways.

A real receiving server runs in each test (``Receiver``): the sandbox's delivery thread posts
to it exactly as it would post to crmsync's receiver, so these tests see the form posts a
receiver sees, retries and all. Subscriptions are made through the API (credentials and all),
the changes that post triggers through the control API.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crmsync.sandbox import SandboxControl, SandboxControlError, SandboxServer, run_sandbox_process
from crmsync.sandbox.__main__ import main as sandbox_main
from crmsync.sandbox.guide import LIST_PATH as GETLIST_PATH
from crmsync.sandbox.guide import UPDATE_PATH as GUIDE_UPDATE_PATH
from crmsync.sandbox.rest import CREATE_PATH, GET_ENTITY_PATH, LIST_PATH, SUBSCRIBE_PATH, UNSUBSCRIBE_PATH

KEY = "unit-triggers-key-4b1d8e"
CREDENTIALS = {"CompanyID": 1000, "APIKey": KEY}
FOLDER = "customers"
FORM_TYPE = "application/x-www-form-urlencoded"


# -- helpers --------------------------------------------------------------------------------


def api(url: str, path: str, credentials=None, **body):
    """The parsed answer of an API call carrying ``credentials`` (the right ones by default)."""
    data = json.dumps({"Credentials": credentials or CREDENTIALS, **body}, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url + path, data=data, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        return json.loads(response.read().decode("utf-8"))


def subscribe(url: str, hook: str, trigger_type: str = "CreateOrUpdate", **body):
    return api(url, SUBSCRIBE_PATH, URL=hook, Folder=body.pop("Folder", FOLDER), TriggerType=trigger_type, **body)


def get_entity(url: str, entity_id, **body):
    return api(url, GET_ENTITY_PATH, EntityID=entity_id, **body)


def list_entities(url: str):
    return api(url, LIST_PATH, Folder=FOLDER, LoadProperties=True, Paging={"StartIndex": 0, "PageSize": 100})


class Receiver:
    """A real HTTP server recording every request it gets (method, path, headers, body).

    ``answers``: the HTTP statuses to answer, in turn (then 200); ``delay``: seconds to wait
    before answering (a slow receiver).
    """

    def __init__(self, answers: list[int] | None = None, delay: float = 0):
        self.requests: list[dict] = []
        self.answers = list(answers or [])
        self.delay = delay
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
                with receiver.lock:
                    receiver.requests.append({"method": self.command, "path": self.path,
                                              "headers": dict(self.headers), "body": body})
                    status = receiver.answers.pop(0) if receiver.answers else 200
                time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/sumit/{token}"

    def triggers(self) -> list:
        """What each post's form field ``json`` held, parsed."""
        with self.lock:
            return [json.loads(urllib.parse.parse_qs(r["body"], strict_parsing=True)["json"][0])
                    for r in self.requests]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def new_token() -> str:
    return "tok" + secrets.token_hex(12)


def closed_port() -> int:
    """A local port nothing listens on (a receiver that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server():
    with SandboxServer(company_id=1000, api_key=KEY) as sandbox:
        yield sandbox


@pytest.fixture
def control(server):
    return SandboxControl(server.url)


@pytest.fixture
def receiver():
    hooks = Receiver()
    yield hooks
    hooks.stop()


def summary(report: dict) -> list[tuple]:
    return [(d["type"], d["entity_id"], d["shape"], d["status"], d["tries"]) for d in report["deliveries"]]


# -- delivery -------------------------------------------------------------------------------


def test_control_changes_post_object_triggers_in_order_as_form_posts(server, control, receiver):
    token = new_token()
    hook = receiver.url(token)
    for trigger_type in ("CreateOrUpdate", "Archive", "Delete"):
        assert subscribe(server.url, hook, trigger_type) == {"Status": 0, "UserErrorMessage": None,
                                                             "TechnicalErrorDetails": None, "Data": {}}
    [first, second] = control.add_customers([{"Name": "אלפא"}, {"Name": "Beta"}])
    assert control.add_customers([{"CustomerID": first, "Name": "אלפא"}]) == [first]  # unchanged: no trigger
    assert control.edit([{"CustomerID": second, "City": "חיפה"}]) == 1
    assert control.archive([first, "nope"]) == 1
    assert control.delete([second]) == 1
    report = control.wait_for_deliveries(timeout=10)

    assert receiver.triggers() == [
        {"Folder": FOLDER, "Type": "Create", "EntityID": 100001},
        {"Folder": FOLDER, "Type": "Create", "EntityID": 100002},
        {"Folder": FOLDER, "Type": "Update", "EntityID": 100002},
        {"Folder": FOLDER, "Type": "Archive", "EntityID": 100001},
        {"Folder": FOLDER, "Type": "Delete", "EntityID": 100002},
    ]
    assert {(r["method"], r["path"], r["headers"]["Content-Type"]) for r in receiver.requests} == {
        ("POST", f"/hooks/sumit/{token}", FORM_TYPE)}
    assert summary(report) == [("Create", 100001, "object", 200, 1), ("Create", 100002, "object", 200, 1),
                               ("Update", 100002, "object", 200, 1), ("Archive", 100001, "object", 200, 1),
                               ("Delete", 100002, "object", 200, 1)]
    assert report["pending"] == 0
    assert all(datetime.fromisoformat(d["at"]).utcoffset() is not None for d in report["deliveries"])
    assert {d["url"] for d in report["deliveries"]} == {f"http://127.0.0.1:{receiver.httpd.server_address[1]}"}


def test_array_shape_carries_the_properties_as_listentities_shows_them(server, control, receiver):
    subscribe(server.url, receiver.url(new_token()), "CreateOrUpdate")
    subscribe(server.url, receiver.url(new_token()), "Delete")
    control.set_faults(trigger_shape="array", folder_properties=["Segment"])
    [customer_id] = control.add_customers([{"Name": 'חברת אלפא בע"מ', "Phone": "050-1234567", "Segment": "VIP",
                                            "מקור": "אתר"}])
    control.edit([{"CustomerID": customer_id, "Email": "a@example.co.il"}])
    control.delete([customer_id])
    report = control.wait_for_deliveries(timeout=10)

    created = {"Customers_FullName": ['חברת אלפא בע"מ'], "Customers_Phone": ["050-1234567"], "Segment": ["VIP"]}
    assert receiver.triggers() == [
        [FOLDER, 100001, "Create", created],
        [FOLDER, 100001, "Update", {**created, "Customers_EmailAddress": ["a@example.co.il"]}],
        [FOLDER, 100001, "Delete", {}],
    ]
    assert [d["shape"] for d in report["deliveries"]] == ["array"] * 3


def test_alternate_shape_posts_object_then_array_in_turn(server, control, receiver):
    subscribe(server.url, receiver.url(new_token()), "CreateOrUpdate")
    control.set_faults(trigger_shape="alternate")
    control.add_customers([{"Name": f"C{i}"} for i in range(4)])
    report = control.wait_for_deliveries(timeout=10)
    posted = receiver.triggers()
    assert [type(p).__name__ for p in posted] == ["dict", "list", "dict", "list"]
    assert posted[0] == {"Folder": FOLDER, "Type": "Create", "EntityID": 100001}
    assert posted[1] == [FOLDER, 100002, "Create", {"Customers_FullName": ["C1"]}]
    assert [d["shape"] for d in report["deliveries"]] == ["object", "array", "object", "array"]


def test_trigger_type_filters_what_each_subscription_gets(server, control):
    deletes, updates, creates = Receiver(), Receiver(), Receiver()
    try:
        subscribe(server.url, deletes.url(new_token()), "Delete")
        subscribe(server.url, updates.url(new_token()), "update")  # any case
        subscribe(server.url, creates.url(new_token()), "CREATE")
        ids = control.add_customers([{"Name": "A"}, {"Name": "B"}])
        control.edit([{"CustomerID": ids[0], "Name": "A2"}])
        control.archive([ids[1]])
        control.delete(ids)
        control.wait_for_deliveries(timeout=10)
        assert [(t["Type"], t["EntityID"]) for t in deletes.triggers()] == [("Delete", 100001), ("Delete", 100002)]
        assert [(t["Type"], t["EntityID"]) for t in updates.triggers()] == [("Update", 100001)]
        assert [(t["Type"], t["EntityID"]) for t in creates.triggers()] == [("Create", 100001), ("Create", 100002)]
        assert sorted(s["TriggerType"] for s in control.triggers()["subscriptions"]) == ["Create", "Delete", "Update"]
    finally:
        for hooks in (deletes, updates, creates):
            hooks.stop()


def test_upserting_an_archived_customer_brings_it_back_with_an_update(server, control, receiver):
    [customer_id] = control.add_customers([{"Name": "A"}])
    subscribe(server.url, receiver.url(new_token()), "CreateOrUpdate")
    control.archive([customer_id])
    assert control.customers() == [] and control.archived_ids() == [customer_id]
    control.add_customers([{"CustomerID": customer_id, "Name": "A"}])  # the same record, no longer archived
    control.wait_for_deliveries(timeout=10)
    assert receiver.triggers() == [{"Folder": FOLDER, "Type": "Update", "EntityID": 100001}]
    assert [c["Name"] for c in control.customers()] == ["A"] and control.archived_ids() == []
    assert "IsArchived" not in get_entity(server.url, customer_id)["Data"]["Entity"]


def test_unsubscribe_stops_deliveries_and_may_be_repeated(server, control, receiver):
    hook = receiver.url(new_token())
    subscribe(server.url, hook, "Create")
    subscribe(server.url, hook, "Delete")
    subscribe(server.url, hook, "Create")  # the same URL and type again replaces it
    assert len(control.triggers()["subscriptions"]) == 2
    control.add_customers([{"Name": "A"}])
    control.wait_for_deliveries(timeout=10)
    assert api(server.url, UNSUBSCRIBE_PATH, URL=hook)["Data"] == {"Removed": 2}
    assert api(server.url, UNSUBSCRIBE_PATH, URL=hook) == {"Status": 0, "UserErrorMessage": None,
                                                           "TechnicalErrorDetails": None, "Data": {"Removed": 0}}
    control.add_customers([{"Name": "B"}])
    control.delete(["100001"])
    time.sleep(0.3)  # a post that should not happen would have had the time to arrive
    report = control.wait_for_deliveries(timeout=10)
    assert [t["EntityID"] for t in receiver.triggers()] == [100001] and len(report["deliveries"]) == 1
    assert report["subscriptions"] == []


def test_changes_through_the_api_itself_post_no_triggers(server, control, receiver):
    subscribe(server.url, receiver.url(new_token()), "CreateOrUpdate")
    created = api(server.url, CREATE_PATH, Details={"Name": "Pushed"})["Data"]["CustomerID"]
    api(server.url, "/accounting/customers/update/", Details={"ID": created, "City": "Haifa"})
    api(server.url, GUIDE_UPDATE_PATH, Customer={"Name": "Guide push"})
    time.sleep(0.3)
    assert control.wait_for_deliveries(timeout=10)["deliveries"] == [] and receiver.requests == []
    assert len(control.customers()) == 2


def test_reset_keeps_subscriptions_posts_nothing_and_clear_removes_them(server, control, receiver):
    subscribe(server.url, receiver.url(new_token()), "CreateOrUpdate")
    control.add_customers([{"Name": "A"}])
    control.wait_for_deliveries(timeout=10)
    assert control.reset([{"Name": "Seeded"}]) == ["100001"]
    time.sleep(0.3)
    report = control.wait_for_deliveries(timeout=10)
    assert report["deliveries"] == [] and len(report["subscriptions"]) == 1 and len(receiver.requests) == 1
    control.clear_triggers()
    assert control.triggers() == {"subscriptions": [], "deliveries": [], "pending": 0}
    control.add_customers([{"Name": "B"}])
    time.sleep(0.3)
    assert len(receiver.requests) == 1


def test_edit_of_an_unknown_customer_changes_nothing(server, control, receiver):
    [known] = control.add_customers([{"Name": "A", "City": "Haifa"}])
    subscribe(server.url, receiver.url(new_token()), "CreateOrUpdate")
    with pytest.raises(SandboxControlError, match=r"HTTP 400: customer 999999 does not exist; nothing was edited"):
        control.edit([{"CustomerID": known, "City": "Acre"}, {"CustomerID": "999999", "City": "Acre"}])
    with pytest.raises(SandboxControlError, match="HTTP 400: each change must be a JSON object with the CustomerID"):
        control.edit([{"City": "Acre"}])
    assert control.edit([{"CustomerID": known, "City": "Haifa"}]) == 0  # the value it already has
    assert control.customers() == [{"CustomerID": known, "Name": "A", "City": "Haifa"}]
    time.sleep(0.3)
    assert control.wait_for_deliveries(timeout=10)["deliveries"] == [] and receiver.requests == []


# -- retries and receivers that fail ----------------------------------------------------------


def test_a_receiver_answering_500_twice_then_200_gets_three_tries(server, control):
    hooks = Receiver(answers=[500, 503])
    try:
        subscribe(server.url, hooks.url(new_token()), "Create")
        control.add_customers([{"Name": "A"}])
        report = control.wait_for_deliveries(timeout=10)
        assert summary(report) == [("Create", 100001, "object", 200, 3)]
        assert len(hooks.requests) == 3 and len({r["body"] for r in hooks.requests}) == 1  # the same post, again
    finally:
        hooks.stop()


def test_429_is_retried_and_other_4xx_answers_are_final(server, control):
    hooks = Receiver(answers=[429, 404])
    try:
        subscribe(server.url, hooks.url(new_token()), "Create")
        control.add_customers([{"Name": "A"}])
        assert summary(control.wait_for_deliveries(timeout=10)) == [("Create", 100001, "object", 404, 2)]
        assert len(hooks.requests) == 2
    finally:
        hooks.stop()


def test_a_receiver_that_is_down_costs_three_tries_and_the_sandbox_serves_on(server, control, receiver):
    down = f"http://127.0.0.1:{closed_port()}/hooks/sumit/{new_token()}"
    subscribe(server.url, down, "Create")
    subscribe(server.url, receiver.url(new_token()), "Create")
    control.add_customers([{"Name": "A"}])
    assert list_entities(server.url)["Data"]["Entities"][0]["Customers_FullName"] == ["A"]  # while it retries
    report = control.wait_for_deliveries(timeout=15)
    assert sorted((d["status"], d["tries"]) for d in report["deliveries"]) == [(0, 3), (200, 1)]
    assert receiver.triggers() == [{"Folder": FOLDER, "Type": "Create", "EntityID": 100001}]
    control.add_customers([{"Name": "B"}])  # deliveries go on after the failed one
    control.wait_for_deliveries(timeout=15)
    assert [t["EntityID"] for t in receiver.triggers()] == [100001, 100002]


def test_wait_for_deliveries_says_how_many_are_still_pending(server, control):
    slow = Receiver(delay=1.0)
    try:
        subscribe(server.url, slow.url(new_token()), "Create")
        control.add_customers([{"Name": "A"}, {"Name": "B"}])
        with pytest.raises(TimeoutError, match=r"^2 trigger deliveries still pending after 0.2 s$"):
            control.wait_for_deliveries(timeout=0.2)
        assert [d["tries"] for d in control.wait_for_deliveries(timeout=10)["deliveries"]] == [1, 1]
    finally:
        slow.stop()


# -- subscribing ----------------------------------------------------------------------------


@pytest.mark.parametrize("body, message", [
    ({"URL": "ftp://example.com/hook"}, "URL must be an http(s) URL"),
    ({"URL": "not a url"}, "URL must be an http(s) URL"),
    ({"URL": "http://"}, "URL must be an http(s) URL"),
    ({"URL": None}, "URL must be an http(s) URL"),
    ({"URL": "https://example.com/hook", "Folder": "orders"}, "Folder 'orders' not found"),
    ({"URL": "https://example.com/hook", "TriggerType": "Modify"},
     "TriggerType must be one of CreateOrUpdate, Create, Update, Archive, Delete, not 'Modify'"),
])
def test_a_bad_subscription_is_refused_with_the_reason(server, control, body, message):
    request = {"Folder": FOLDER, "TriggerType": "CreateOrUpdate", **body}
    answer = api(server.url, SUBSCRIBE_PATH, **request)
    assert answer["Status"] == 1 and answer["UserErrorMessage"] == message and answer["Data"] is None
    assert control.triggers()["subscriptions"] == []


def test_wrong_credentials_cannot_subscribe_or_unsubscribe(server, control, receiver):
    hook = receiver.url(new_token())
    answer = subscribe(server.url, hook, credentials={"CompanyID": 1000, "APIKey": "wrong"})
    assert answer["Status"] == 1 and answer["UserErrorMessage"] == "Invalid credentials (CompanyID/APIKey)"
    assert control.triggers()["subscriptions"] == []
    subscribe(server.url, hook)
    answer = api(server.url, UNSUBSCRIBE_PATH, credentials={"CompanyID": 1001, "APIKey": KEY}, URL=hook)
    assert answer["Status"] == 1 and len(control.triggers()["subscriptions"]) == 1


def test_the_subscription_list_masks_the_token_and_matches_by_sha256(server, control, receiver):
    import hashlib

    token = new_token()
    hook = receiver.url(token)
    subscribe(server.url, hook, "CreateOrUpdate", View="active")
    [subscription] = control.triggers()["subscriptions"]
    port = receiver.httpd.server_address[1]
    assert subscription == {"Folder": FOLDER, "View": "active", "TriggerType": "CreateOrUpdate",
                            "URL": f"http://127.0.0.1:{port}/hooks/sumit/***",
                            "url_sha256": hashlib.sha256(hook.encode()).hexdigest()}


# -- secrecy --------------------------------------------------------------------------------


def test_no_log_holds_the_token_of_a_trigger_url(server, control, receiver, capsys):
    token, down_token, refused_token = new_token(), new_token(), new_token()
    subscribe(server.url, receiver.url(token), "CreateOrUpdate")
    subscribe(server.url, f"http://127.0.0.1:{closed_port()}/hooks/sumit/{down_token}", "Create")
    subscribe(server.url, f"https://example.com/hooks/{refused_token}?secret={refused_token}", Folder="orders")
    control.add_customers([{"Name": "A"}])
    report = control.wait_for_deliveries(timeout=15)
    api(server.url, UNSUBSCRIBE_PATH, URL=receiver.url(token))
    assert len(report["deliveries"]) == 2
    logs = json.dumps([report, control.triggers(), control.requests()])
    output = capsys.readouterr().err
    assert re.search(r"^trigger Create 100001 -> http://127\.0\.0\.1:\d+ \(object\): HTTP 200, 1 try$", output,
                     re.MULTILINE)
    assert re.search(r"^trigger Create 100001 -> http://127\.0\.0\.1:\d+ \(object\): could not connect, 3 tries$",
                     output, re.MULTILINE)
    for secret in (token, down_token, refused_token):
        assert secret not in logs and secret not in output
    paths = json.dumps([report["deliveries"], control.requests()])  # no path at all, only the subscriptions' masked one
    assert "/hooks/" not in paths and "/hooks/" not in output
    assert [r["body"]["URL"] for r in control.requests()][:1] == [
        f"http://127.0.0.1:{receiver.httpd.server_address[1]}/***"]


def test_process_log_lines_hold_no_token_and_the_trigger_shape_flag_works():
    hooks = Receiver()
    token = new_token()
    try:
        with run_sandbox_process(api_key=KEY, verbose=True, trigger_shape="array") as sandbox:
            assert sandbox.control.faults() == {"trigger_shape": "array"}
            subscribe(sandbox.url, hooks.url(token), "CreateOrUpdate")
            subscribe(sandbox.url, f"http://127.0.0.1:{closed_port()}/hooks/sumit/{token}", "Delete")
            sandbox.control.add_customers([{"Name": "A"}])
            sandbox.control.delete(["100001"])
            sandbox.control.wait_for_deliveries(timeout=15)
            api(sandbox.url, UNSUBSCRIBE_PATH, URL=hooks.url(token))
            assert sandbox.control.clear_faults() == {"trigger_shape": "array"}  # a start-time knob
        assert hooks.triggers() == [[FOLDER, 100001, "Create", {"Customers_FullName": ["A"]}]]
        output = sandbox.stderr()
        subscribed = r'^POST /triggers/triggers/subscribe/ 200 \d+\.\dms .*"URL": "http://127\.0\.0\.1:\d+/\*\*\*"'
        assert re.search(subscribed, output, re.MULTILINE)
        assert "(array): HTTP 200, 1 try" in output and "(array): could not connect, 3 tries" in output
        assert token not in output and "/hooks/" not in output and KEY not in output
    finally:
        hooks.stop()
    assert sandbox.process.returncode == 0


def test_a_bad_trigger_shape_is_refused(control, capsys):
    with pytest.raises(SandboxControlError, match="trigger_shape must be one of object, array, alternate, not 'xml'"):
        control.set_faults(trigger_shape="xml")
    with pytest.raises(SystemExit) as info:
        sandbox_main(["--trigger-shape", "xml", "--port", "0"])
    assert info.value.code == 2 and "--trigger-shape" in capsys.readouterr().err


# -- getentity and archiving ----------------------------------------------------------------


def test_getentity_answers_the_customer_as_listentities_shows_it(server, control):
    control.add_customers([{"Name": "A"}, {"Name": 'חברת בטא בע"מ', "TaxID": "012345678", "Segment": "VIP",
                                            "מקור": "אתר"}])
    control.set_faults(folder_properties=["Segment"])
    listed = list_entities(server.url)["Data"]["Entities"][1]
    answer = get_entity(server.url, 100002, Folder=FOLDER, IncludeFields=True)
    assert answer == {"Status": 0, "UserErrorMessage": None, "TechnicalErrorDetails": None,
                      "Data": {"Entity": listed}}
    assert listed == {"ID": 100002, "Folder": FOLDER, "Customers_FullName": ['חברת בטא בע"מ'],
                      "Customers_CompanyNumber": ["012345678"], "Segment": ["VIP"]}
    assert get_entity(server.url, "100002")["Data"]["Entity"] == listed  # the id as text finds it too


@pytest.mark.parametrize("entity_id", [999, "nope", "100001"])
def test_getentity_of_an_unknown_or_deleted_customer_is_not_found(server, control, entity_id):
    control.add_customers([{"Name": "Deleted"}])
    control.delete(["100001"])
    answer = get_entity(server.url, entity_id)
    assert answer["Status"] == 1 and answer["Data"] is None
    assert answer["UserErrorMessage"] == f"Entity {entity_id} was not found"
    assert not re.search(r"credential|api ?key|unauthori[sz]ed|password", answer["UserErrorMessage"], re.IGNORECASE)


def test_getentity_refuses_a_missing_id_a_wrong_folder_and_wrong_credentials(server, control):
    control.add_customers([{"Name": "A"}])
    assert get_entity(server.url, None)["UserErrorMessage"].startswith("EntityID is required")
    assert get_entity(server.url, 100001, Folder="orders")["UserErrorMessage"] == "Folder 'orders' not found"
    answer = get_entity(server.url, 100001, credentials={"CompanyID": 1000, "APIKey": "wrong"})
    assert answer["Status"] == 1 and answer["UserErrorMessage"] == "Invalid credentials (CompanyID/APIKey)"


def test_an_archived_customer_leaves_the_listings_but_getentity_finds_it(server, control):
    ids = control.add_customers([{"Name": "A"}, {"Name": "B"}, {"Name": "C"}])
    assert control.archive([ids[1], ids[1]]) == 1
    assert control.archive([ids[1]]) == 0  # already archived
    assert [e["ID"] for e in list_entities(server.url)["Data"]["Entities"]] == [100001, 100003]
    assert [c["Name"] for c in api(server.url, GETLIST_PATH)["Customers"]] == ["A", "C"]
    page = api(server.url, GETLIST_PATH, Paging={"StartIndex": 0, "PageSize": 2})
    assert [c["Name"] for c in page["Customers"]] == ["A", "C"] and page["HasNextPage"] is False
    entity = get_entity(server.url, ids[1])["Data"]["Entity"]
    assert entity == {"ID": 100002, "Folder": FOLDER, "Customers_FullName": ["B"], "IsArchived": True}
    assert "IsArchived" not in get_entity(server.url, ids[0])["Data"]["Entity"]
    assert control.archived_ids() == [ids[1]]
    control.delete([ids[1]])
    assert get_entity(server.url, ids[1])["UserErrorMessage"] == "Entity 100002 was not found"
    assert control.archived_ids() == []


def test_new_endpoints_go_through_the_request_log_and_the_faults(server, control):
    control.add_customers([{"Name": "A"}])
    control.set_faults(fail_next={"count": 1, "status": 503, "endpoint": "getentity"})
    with pytest.raises(urllib.error.HTTPError) as info:
        get_entity(server.url, 100001)
    assert info.value.code == 503
    info.value.close()
    assert get_entity(server.url, 100001)["Status"] == 0
    assert control.stats() == {GET_ENTITY_PATH: 2}
