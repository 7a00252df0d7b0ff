"""read_concurrency: a pull reads several listing pages at once, speculatively (SUMIT never says how
many pages there are), and hands them over in listing order with every guard of a page-by-page read.

Hook-level tests use an in-process sandbox with latency, recording each listing call's time span
through the hook's own ``call``; the pull tests run the pull engine on PostgreSQL under both API
profiles (``env``).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time

import psycopg
import pytest

from conftest import list_requests, set_sumit_connection
from crmsync.core.errors import ConfigurationError, SumitTransientError
from crmsync.db.store import CustomerStore, RunRef
from crmsync.flows import pull
from crmsync.hooks.sumit import SumitHook
from crmsync.sandbox import SandboxServer

KEY = "concurrent-pull-" + secrets.token_hex(8)
PAGE = 10  # the rest profile's smallest page


@pytest.fixture(params=["guide", "rest"])
def api_profile(request):
    return request.param


def make_hook(monkeypatch, url, api_profile, **extra):
    conn_id = "sumit_concurrent_" + secrets.token_hex(4)
    options = {"api_profile": api_profile, "customers_folder": "customers", "page_size": PAGE, "backoff_initial": 0.01,
               "backoff_max": 0.1, "max_attempts": 3, "read_timeout": 5, "connect_timeout": 2, **extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
        {"conn_type": "sumit", "host": url, "login": "1000", "password": KEY, "extra": options}))
    return SumitHook(conn_id)


class CallLog:
    """Every listing call the hook makes: (StartIndex, began, ended); optionally delayed by start."""

    def __init__(self, hook: SumitHook, delay=None):
        self.spans: list[tuple[int, float, float]] = []
        self.started: list[int] = []
        self.lock = threading.Lock()
        real_call = hook.call

        def call(endpoint, body, **kwargs):
            start = body["Paging"]["StartIndex"]
            began = time.monotonic()
            with self.lock:
                self.started.append(start)
            if delay is not None:
                time.sleep(delay(start))
            try:
                return real_call(endpoint, body, **kwargs)
            finally:
                with self.lock:
                    self.spans.append((start, began, time.monotonic()))

        hook.call = call  # the listing's fetches look it up on the hook, as any caller does

    def most_at_once(self) -> int:
        events = sorted([(b, 1) for _, b, _ in self.spans] + [(e, -1) for _, _, e in self.spans])
        current = peak = 0
        for _, change in events:
            current += change
            peak = max(peak, current)
        return peak


def seed(server, n):
    server.state.reset([{"Name": f"C{i}"} for i in range(n)])


def read_all(hook):
    pages = list(hook.iter_customer_pages())
    return pages, [c.sumit_id for page in pages for c in page.customers]


EXPECTED_95 = [str(100001 + i) for i in range(95)]


def test_listing_calls_overlap_and_pages_come_in_order(monkeypatch, api_profile):
    with SandboxServer(company_id=1000, api_key=KEY, latency_ms=150) as server:
        seed(server, 95)
        hook = make_hook(monkeypatch, server.url, api_profile, read_concurrency=4)
        calls = CallLog(hook)
        pages, ids = read_all(hook)
    assert ids == EXPECTED_95  # each customer once, in listing order
    assert [p.number for p in pages] == list(range(1, 11))
    assert calls.most_at_once() >= 3  # sequential reading never has two calls under way
    # Page 1 alone, then never more than read_concurrency at once; at most 3 requested past the end.
    assert calls.most_at_once() <= 4 and len(calls.spans) <= 10 + 3
    assert len(calls.spans) == len(calls.started)  # every request ended before the listing did


def test_read_concurrency_1_reads_one_page_at_a_time_and_nothing_past_the_end(monkeypatch, api_profile):
    with SandboxServer(company_id=1000, api_key=KEY, latency_ms=30) as server:
        seed(server, 95)
        hook = make_hook(monkeypatch, server.url, api_profile, read_concurrency=1)
        calls = CallLog(hook)
        _, ids = read_all(hook)
    assert ids == EXPECTED_95
    assert calls.most_at_once() == 1
    assert [start for start, _, _ in calls.spans] == [i * PAGE for i in range(10)]  # exactly as before


def test_pages_answered_out_of_order_are_handed_over_in_order(monkeypatch, api_profile):
    # Within each window of 4, the later a page the sooner it answers.
    with SandboxServer(company_id=1000, api_key=KEY) as server:
        seed(server, 95)
        hook = make_hook(monkeypatch, server.url, api_profile, read_concurrency=4)
        calls = CallLog(hook, delay=lambda start: 0.05 * (3 - (start // PAGE) % 4))
        pages, ids = read_all(hook)
    finished = [start for start, _, _ in sorted(calls.spans, key=lambda span: span[2])]
    assert finished != sorted(finished)  # the answers really came out of order
    assert ids == EXPECTED_95 and [p.number for p in pages] == list(range(1, 11))


def test_at_most_read_concurrency_pages_are_held_ahead_of_the_consumer(monkeypatch, api_profile):
    with SandboxServer(company_id=1000, api_key=KEY) as server:
        seed(server, 200)
        hook = make_hook(monkeypatch, server.url, api_profile, read_concurrency=3)
        calls = CallLog(hook)
        held = []
        consumed = 0
        for page in hook.iter_customer_pages():
            consumed += 1
            time.sleep(0.02)  # a slow merge: the readers must not run ahead of it
            with calls.lock:
                held.append(len(calls.started) - consumed)
    assert consumed == 20
    assert max(held) <= 2  # requested (answered or not) past the page in hand: read_concurrency - 1


def test_a_server_that_caps_the_page_size_is_read_whole(monkeypatch, api_profile):
    """Asked for 25 a page, the server sends 10: the speculation steps by what it sends."""
    with SandboxServer(company_id=1000, api_key=KEY, max_page_size=10) as server:
        seed(server, 95)
        hook = make_hook(monkeypatch, server.url, api_profile, read_concurrency=4, page_size=25)
        _, ids = read_all(hook)
    assert ids == EXPECTED_95


def test_a_server_ignoring_paging_is_still_detected(monkeypatch, api_profile):
    # The whole list (5) fits a page, so the first answer looks like a paging server's.
    with SandboxServer(company_id=1000, api_key=KEY) as server:
        seed(server, 5)
        server.state.set_knobs({"ignore_paging": True, "ignore_paging_says_more": True})
        hook = make_hook(monkeypatch, server.url, api_profile, read_concurrency=4)
        calls = CallLog(hook)
        pages, ids = read_all(hook)
        assert ids == EXPECTED_95[:5] and len(pages) == 1  # page 2 repeated page 1: the listing ended
        assert len(calls.spans) <= 1 + 4
        # A list longer than a page: more than asked for, so no speculation at all (2 calls, as before).
        seed(server, 25)
        server.state.set_knobs({"ignore_paging": True, "ignore_paging_says_more": True})
        calls = CallLog(hook)
        _, ids = read_all(hook)
    assert ids == EXPECTED_95[:25] and len(calls.spans) == 2


def test_an_empty_page_that_promises_more_is_still_an_error(monkeypatch):
    from crmsync.core.errors import SumitProtocolError

    with SandboxServer(company_id=1000, api_key=KEY) as server:
        server.state.set_knobs({"ignore_paging": True, "ignore_paging_says_more": True})
        with pytest.raises(SumitProtocolError, match="empty page 1"):
            read_all(make_hook(monkeypatch, server.url, "guide", read_concurrency=4))


def test_max_pages_still_ends_a_listing_that_never_ends(monkeypatch):
    from crmsync.core.errors import SumitProtocolError

    with SandboxServer(company_id=1000, api_key=KEY) as server:
        seed(server, 95)
        hook = make_hook(monkeypatch, server.url, "guide", read_concurrency=4, max_pages=3)
        calls = CallLog(hook)
        with pytest.raises(SumitProtocolError, match="did not end after 3 pages"):
            read_all(hook)
    assert sorted(start for start, _, _ in calls.spans) == [0, 10, 20]  # nothing requested beyond max_pages


def test_read_concurrency_is_validated_naming_the_connection(monkeypatch):
    for value in (0, 17, "many"):
        hook = make_hook(monkeypatch, "http://127.0.0.1:9", "guide", read_concurrency=value)
        with pytest.raises(ConfigurationError, match=r"Airflow connection 'sumit_concurrent_\w+'.*read_concurrency"):
            hook.settings  # noqa: B018


# -- the pull, on PostgreSQL -----------------------------------------------------------------------


def run_pull(pg, run_id):
    hook = SumitHook()
    try:
        with CustomerStore(psycopg.connect(pg.dsn), RunRef("test", run_id)) as store:
            store.ensure_schema()
            return pull.run_pull(hook, store, log=logging.getLogger("test")).counts
    finally:
        hook.close()


def stored(pg):
    with pg.connect() as conn:
        return conn.execute("SELECT sumit_customer_id, metadata ? 'crm_missing_since' FROM sumit_customers"
                            " ORDER BY sumit_customer_id").fetchall()


def test_a_concurrent_pull_stores_every_customer_exactly_once(env, pg, sandbox, profile):
    sandbox.control.add_customers([{"Name": f"C{i}"} for i in range(430)])  # 9 pages of 50
    sandbox.control.set_faults(latency_ms=40)
    set_sumit_connection(sandbox.url, read_concurrency=4)
    counts = run_pull(pg, "concurrent-once")
    rows = stored(pg)
    assert (counts.fetched, counts.created, counts.vanished) == (430, 430, 0)
    assert len(rows) == 430 and len({r[0] for r in rows}) == 430 and not any(r[1] for r in rows)
    assert len(list_requests(sandbox, profile)) <= 9 + 3  # at most read_concurrency - 1 past the end


def test_a_page_failing_after_its_tries_fails_the_pull_and_writes_nothing(env, pg, sandbox, profile):
    sandbox.control.add_customers([{"Name": f"C{i}"} for i in range(430)])
    set_sumit_connection(sandbox.url, read_concurrency=4)
    run_pull(pg, "concurrent-first")
    before = stored(pg)
    removed = [c["CustomerID"] for c in sandbox.control.customers()[:100]]
    sandbox.control.delete(removed)  # a complete pull would flag these 100 as vanished
    sandbox.control.set_faults(fail_next={"count": 1000, "status": 503, "after": 2, "endpoint": "list"})
    with pytest.raises(SumitTransientError, match="503"):
        run_pull(pg, "concurrent-failing")
    assert stored(pg) == before  # nothing flagged, nothing written: the pull is one transaction
