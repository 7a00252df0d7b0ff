"""SumitHook against the sandbox over a real socket, under both API profiles: retries,
paging guard, protocol errors, idempotent creates.

Each hook reads its own connection from an AIRFLOW_CONN_* variable, as a task reads one.
"""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import key_forms
from crmsync.core.errors import SumitAuthError, SumitPermanentError, SumitProtocolError, SumitTransientError
from crmsync.core.model import LocalCustomer
from crmsync.hooks.sumit import SumitHook
from crmsync.hooks.transport import Poster
from crmsync.sandbox import SandboxServer

KEY = secrets.token_urlsafe(6) + "+/=\"\\'é-hook-key"  # random first 8 characters; every escaping changes it
LIST_PATH = {"guide": "/website/customers/getlist/", "rest": "/crm/data/listentities/"}
PAGE = 10  # the rest profile's smallest page


@pytest.fixture(params=["guide", "rest"])
def profile(request):
    return request.param


@pytest.fixture
def server():
    with SandboxServer(company_id=1000, api_key=KEY) as sandbox:
        yield sandbox


def connection_hook(monkeypatch, url, *, company_id=1000, api_key=KEY, **extra):
    """A SumitHook on a new connection (an AIRFLOW_CONN_* variable) pointing at ``url``."""
    conn_id = "sumit_hook_test_" + secrets.token_hex(4)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
        {"conn_type": "sumit", "host": url, "login": str(company_id), "password": api_key, "extra": extra}))
    return SumitHook(conn_id)


@pytest.fixture
def make_hook(profile, monkeypatch):
    def make(url, **overrides):
        options = dict(company_id=1000, api_key=KEY, backoff_initial=0.01, backoff_max=0.2,
                       max_attempts=4, read_timeout=1, connect_timeout=1, page_size=PAGE, api_profile=profile,
                       customers_folder="customers")
        options.update(overrides)
        return connection_hook(monkeypatch, url, **options)

    return make


def seed(server, n):
    for i in range(n):
        server.state.upsert({"Name": f"C{i}"})


def pulled_ids(hook):
    return [c.sumit_id for page in hook.iter_customer_pages() for c in page.customers]


def statuses(server):
    return [entry["status"] for entry in server.state.log]


def test_pages_are_walked_until_has_next_page_is_false(server, make_hook, profile):
    seed(server, 25)
    # One page at a time: read_concurrency > 1 requests pages past the end on speculation
    # (test_concurrent_pull.py covers that).
    assert pulled_ids(make_hook(server.url, read_concurrency=1)) == [str(100001 + i) for i in range(25)]
    assert [entry["path"] for entry in server.state.log] == [LIST_PATH[profile]] * 3


def test_pull_maps_hebrew_text_typed_properties_and_custom_fields(server, make_hook, profile):
    server.state.upsert({"Name": 'חברת אלפא בע"מ', "TaxID": "012345678", "CompanyName": "אלפא", "Country": "IL",
                         "Property_7": "x", "מקור": "אתר"})
    [customer] = [c for page in make_hook(server.url).iter_customer_pages() for c in page.customers]
    assert customer.fields["name"] == 'חברת אלפא בע"מ' and customer.fields["tax_id"] == "012345678"
    assert customer.fields["company_name"] == "אלפא" and customer.fields["country"] == "IL"
    assert customer.custom == {"Property_7": "x", "מקור": "אתר"}


@pytest.mark.parametrize("options", [{"status_style": "numeric"}, {"list_shape": "data"}, {"numeric_ids": True}])
def test_both_answer_shapes_and_id_types_are_accepted(options, make_hook):
    with SandboxServer(company_id=1000, api_key=KEY, **options) as server:
        seed(server, 3)
        assert pulled_ids(make_hook(server.url)) == ["100001", "100002", "100003"]


def test_server_ignoring_paging_is_read_once(server, make_hook):
    seed(server, 25)
    server.state.set_knobs({"ignore_paging": True, "ignore_paging_says_more": True})
    assert len(pulled_ids(make_hook(server.url))) == 25
    assert len(server.state.log) == 2  # the second, identical page ended the listing


def test_pages_of_records_without_ids_are_not_mistaken_for_a_repeated_page(server, make_hook):
    """Invalid records all look alike by id (none); the paging guard must not stop on them."""
    server.state.add_raw([{"Name": f"no id {i}"} for i in range(3 * PAGE)])
    pages = list(make_hook(server.url, api_profile="guide").iter_customer_pages())
    assert sum(len(page.rejected) for page in pages) == 3 * PAGE


def test_empty_page_that_promises_more_is_a_protocol_error(server, make_hook):
    server.state.set_knobs({"ignore_paging": True, "ignore_paging_says_more": True})
    with pytest.raises(SumitProtocolError, match="empty page 1"):
        pulled_ids(make_hook(server.url))


def test_transient_faults_are_retried_and_retry_after_is_honoured(server, make_hook):
    seed(server, 1)
    server.state.set_knobs({"fail_next": {"count": 1, "status": 429, "retry_after": 0.3}})
    started = time.monotonic()
    assert pulled_ids(make_hook(server.url, backoff_max=1)) == ["100001"]
    assert time.monotonic() - started >= 0.3
    assert statuses(server) == [429, 200]


@pytest.mark.parametrize("fault", [
    {"fail_next": {"count": 2, "status": 503}},
    {"fail_next": {"count": 2, "status": 500}},
    {"drop_next": {"count": 2}},
    {"hang_next": {"count": 1, "seconds": 1.5}},
])
def test_reads_survive_each_transient_fault(server, fault, make_hook, reliability):
    seed(server, 1)
    server.state.set_knobs(fault)
    ids = pulled_ids(make_hook(server.url))
    reliability("5xx, connection reset, read timeout on a listing call (hook level)", outcome="read after retry",
                lost=1 - len(ids), duplicated=len(ids) - len(set(ids)))
    assert ids == ["100001"]


def test_retries_are_bounded(server, make_hook):
    server.state.set_knobs({"fail_next": {"count": 10, "status": 502}})
    with pytest.raises(SumitTransientError, match="HTTP 502"):
        pulled_ids(make_hook(server.url, max_attempts=3))
    assert statuses(server) == [502, 502, 502]


def test_connection_refused_is_transient_and_named(make_hook):
    with pytest.raises(SumitTransientError, match="connection refused"):
        pulled_ids(make_hook("http://127.0.0.1:9", max_attempts=2))


def test_the_poster_chooses_its_pool_again_once_the_pool_is_closed(server):
    """Poster keeps the pool HTTPAdapter chose for a URL; a pool closed meanwhile (urllib3 1.26's
    pool manager closes a pool it drops) is chosen again, not reported as a lost connection (which
    would leave a create unsent)."""
    session = requests.Session()
    poster = Poster(session, server.url)
    url = server.url + "/website/customers/getlist/"
    body = json.dumps({"Credentials": {"CompanyID": 1000, "APIKey": KEY}}).encode()
    assert poster.post(url, body, (2, 2)).status_code == 200
    first = poster._routes[url].pool
    session.get_adapter(server.url).poolmanager.clear()  # dropped, as the least recently used pool is,
    first.close()  # and closed
    answer = poster.post(url, body, (2, 2))
    assert answer.status_code == 200 and answer.json()["Status"] == "Success"
    assert poster._routes[url].pool is not first
    assert len(server.state.log) == 2


def test_an_adapter_with_its_own_send_is_left_to_send(server):
    """An adapter mounted with a send of its own (a company's signing or auditing adapter) gets every request."""
    sent = []

    class Auditing(requests.adapters.HTTPAdapter):
        def send(self, request, **kwargs):
            sent.append(request.url)
            return super().send(request, **kwargs)

    session = requests.Session()
    session.mount("http://", Auditing())
    poster = Poster(session, server.url)
    url = server.url + "/website/customers/getlist/"
    body = json.dumps({"Credentials": {"CompanyID": 1000, "APIKey": KEY}}).encode()
    assert poster.post(url, body, (2, 2)).json()["Status"] == "Success"
    assert sent == [url]


def test_lost_create_answer_never_duplicates_a_customer(server, make_hook, profile):
    """SUMIT created the customer but the answer was lost. The guide profile has no lookup key,
    so it does not retry (the record fails and is retried by a later run); the rest profile
    retries safely: create with ExternalIdentifier + SearchMode 2 finds the customer it made."""
    hook = make_hook(server.url)
    new = LocalCustomer(id=1, sumit_id=None, fields={"name": "New"}, fingerprint="x")
    server.state.set_knobs({"drop_after_next": {"count": 1}})
    if profile == "guide":
        with pytest.raises(SumitTransientError):
            hook.push_customer(new)
        assert len(server.state.log) == 1
    else:
        assert hook.push_customer(new).sumit_id == "100001"
        assert len(server.state.log) == 2
    assert len(server.state.customers) == 1
    server.state.set_knobs({"fail_next": {"count": 1, "status": 503}})  # 503: surely not acted on, so retried
    assert hook.push_customer(LocalCustomer(id=2, sumit_id=None, fields={"name": "Other"}, fingerprint="x")).sumit_id
    existing = LocalCustomer(id=3, sumit_id="100001", fields={"name": "Again"}, fingerprint="x")
    server.state.set_knobs({"drop_after_next": {"count": 1}})  # an update is idempotent: retried
    assert hook.push_customer(existing).sumit_id == "100001"
    assert len(server.state.customers) == 2 and server.state.customers["100001"]["Name"] == "Again"


def test_bad_credentials_are_permanent_and_not_retried(server, make_hook):
    hook = make_hook(server.url, api_key="wrong")
    with pytest.raises(SumitAuthError, match="Invalid credentials"):
        pulled_ids(hook)
    assert len(server.state.log) == 1


@pytest.mark.parametrize("kind, words", [("html", "not JSON"), ("truncated", "not JSON"), ("not_json", "not JSON"),
                                         ("missing_customers", "without a (Customers|Data.Entities) list")])
def test_broken_answers_are_protocol_errors_naming_the_endpoint(server, make_hook, profile, kind, words):
    server.state.set_knobs({"malformed_next": {"count": 1, "kind": kind}})
    with pytest.raises(SumitProtocolError, match=words) as info:
        pulled_ids(make_hook(server.url))
    assert LIST_PATH[profile] in str(info.value)


@pytest.mark.parametrize("status", [301, 307, 308])
def test_a_redirect_is_reported_and_not_followed_so_the_key_goes_nowhere_else(server, make_hook, status):
    # An address that redirects (http:// to https://, an old domain) to a real SUMIT-like
    # server: the body holds the API key, so crmsync reports the answer and never sends it on.
    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Location", server.url + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    redirector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=redirector.serve_forever, daemon=True).start()
    try:
        with pytest.raises(SumitProtocolError, match=f"answered HTTP {status}") as info:
            pulled_ids(make_hook(f"http://127.0.0.1:{redirector.server_address[1]}"))
    finally:
        redirector.shutdown()
        redirector.server_close()
    assert not server.state.log  # the server redirected to was never asked
    assert not {form for form in key_forms(KEY) if form in str(info.value)}


def test_refused_record_is_a_permanent_error_with_the_servers_words(server, make_hook):
    server.state.set_knobs({"reject_names": ["Bad"]})
    with pytest.raises(SumitPermanentError, match="Rejected by sandbox rule"):
        make_hook(server.url).push_customer(LocalCustomer(id=1, sumit_id=None, fields={"name": "Bad"}, fingerprint="x"))


def test_key_never_in_error_messages_even_when_the_server_echoes_it(server, make_hook):
    """The server echoes the key in every spelling. Messages are cut at 500 characters, and
    some of these paddings put the cut inside an echoed key: redacting after cutting would
    leave its first characters behind."""
    server.state.set_knobs({"malformed_next": {"count": 1, "kind": "html"}})
    original = server.state.failure
    echoes = " ".join([KEY, json.dumps(KEY), repr(KEY), urllib.parse.quote(KEY, safe=""), json.dumps(KEY)])
    padding = 0
    server.state.failure = lambda message, **kw: original("x" * padding + f"{message}; you sent {echoes}", **kw)
    with pytest.raises(SumitPermanentError) as info:
        pulled_ids(make_hook(server.url))  # the html answer
    assert not sorted(form for form in key_forms(KEY) if form in str(info.value))
    for padding in range(0, 480, 6):  # noqa: B007 - the lambda above reads it
        with pytest.raises(SumitPermanentError) as info:
            pulled_ids(make_hook(server.url, company_id=1001))
        leaked = sorted(form for form in key_forms(KEY) if form in str(info.value))
        assert not leaked, (padding, leaked)


def test_test_connection_reports_success_and_the_reason_for_failure(server, make_hook):
    ok, message = make_hook(server.url).test_connection()
    assert ok and "CompanyID 1000" in message
    ok, message = make_hook(server.url, api_key="wrong").test_connection()
    assert not ok and "credentials" in message.lower() and "wrong" not in message
