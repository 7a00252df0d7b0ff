"""crmsync.sumit.budget: the request budget SumitHook shares between a task's pushers and listing
reads. Its logic on a clock the test moves (``try_acquire`` says how long a caller would
wait), then a few threads on the real clock, then a whole push against a token bucket."""

from __future__ import annotations

import logging
import math
import threading
import time

import pytest

from crmsync.sandbox.faults import RateLimit
from crmsync.sumit.budget import ACCEPTED, OTHER, RATE_LIMITED, RequestBudget, Ticket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def take(budget: RequestBudget, count: int) -> list[Ticket]:
    tickets = [budget.try_acquire() for _ in range(count)]
    assert all(isinstance(t, Ticket) for t in tickets), tickets
    return tickets


def messages(caplog, level=logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "crmsync.sumit.budget" and r.levelno >= level]


ANY_LEVEL = 1  # below DEBUG: a record at any level reaches caplog (0, NOTSET, would inherit the root's WARNING)


def test_without_a_429_it_never_limits_beyond_the_configured_concurrency(clock, caplog):
    caplog.set_level(ANY_LEVEL, logger="crmsync.sumit.budget")  # a per-request line, at any level, is caught
    budget = RequestBudget(12, clock=clock)
    for _ in range(100):
        tickets = take(budget, 12)  # all at once, no pacing
        assert budget.try_acquire() == math.inf  # the 13th waits for a release
        for ticket in tickets:
            budget.release(ticket, ACCEPTED)
    assert (budget.limit, budget.rate, budget.requests) == (12, None, 1200)
    assert budget.summary() is None and not messages(caplog, ANY_LEVEL)


def test_it_starts_with_the_burst_and_the_first_429_halves_the_configured_concurrency(clock, caplog):
    caplog.set_level(logging.INFO, logger="crmsync.sumit.budget")
    budget = RequestBudget(12, burst=2, clock=clock)
    tickets = take(budget, 24)  # twice the configured concurrency while SUMIT has not refused any
    assert budget.try_acquire() == math.inf
    for ticket in tickets[:23]:
        budget.release(ticket, ACCEPTED)
    budget.release(tickets[23], RATE_LIMITED, retry_after=0)  # one 429 (no pacing yet)
    assert budget.limit == 6  # half the configured 12, not half the burst
    assert messages(caplog, logging.WARNING) == [
        "SUMIT is rate limiting (HTTP 429, Retry-After 0 s): sending at most 6 requests at once"]
    while budget.limit < 12:
        for ticket in take(budget, budget.limit):
            budget.release(ticket, ACCEPTED)
    for _ in range(5):  # it grows back to the configured concurrency, never to the burst again
        for ticket in take(budget, 12):
            budget.release(ticket, ACCEPTED)
    assert budget.limit == 12 and budget.rate is None
    assert messages(caplog)[-1].endswith("(the configured concurrency again)")


def test_a_429_halves_the_limit_once_and_pauses_every_caller_until_retry_after(clock, caplog):
    caplog.set_level(logging.INFO, logger="crmsync.sumit.budget")
    budget = RequestBudget(12, clock=clock)
    tickets = take(budget, 12)
    clock.now += 0.01
    for ticket in tickets:  # all twelve refused: one episode, one cut, one line
        budget.release(ticket, RATE_LIMITED, retry_after=1)
    assert budget.limit == 6 and budget.episodes == 1 and budget.rate_limited == 12
    assert messages(caplog, logging.WARNING) == [
        "SUMIT is rate limiting (HTTP 429, Retry-After 1 s): sending at most 6 requests at once"]
    assert budget.try_acquire() == pytest.approx(1.0)  # nobody goes during the pause
    clock.now += 0.6
    assert budget.try_acquire() == pytest.approx(0.4)
    clock.now += 0.4
    assert isinstance(budget.try_acquire(), Ticket)


def test_the_limit_never_drops_below_one_and_grows_back_one_per_round_of_successes(clock, caplog):
    caplog.set_level(ANY_LEVEL, logger="crmsync.sumit.budget")
    budget = RequestBudget(8, clock=clock)
    limits = []
    for _ in range(5):  # each 429 sent after the last cut is a new episode
        [ticket] = take(budget, 1)
        budget.release(ticket, RATE_LIMITED, retry_after=0)
        limits.append(budget.limit)
    assert limits == [4, 2, 1, 1, 1]
    grown = []
    while budget.limit < 8:
        tickets = take(budget, budget.limit)
        for ticket in tickets:
            budget.release(ticket, ACCEPTED)
        grown.append(budget.limit)
    assert grown == [2, 3, 4, 5, 6, 7, 8]  # +1 after as many successes as the limit
    assert messages(caplog)[-1] == ("SUMIT accepted 7 requests in a row: sending at most 8 requests at once "
                                    "(the configured concurrency again)")
    assert len(messages(caplog, ANY_LEVEL)) == 3 + 7  # a line per change of the limit, none per request


def test_other_faults_change_nothing(clock):
    budget = RequestBudget(4, clock=clock)
    for ticket in take(budget, 4):
        budget.release(ticket, OTHER)  # a 503, a cut connection: tenacity's business
    assert (budget.limit, budget.rate, budget.episodes) == (4, None, 0)
    assert budget.requests == 4 and budget.summary() is None


def test_retry_after_is_honoured_up_to_max_pause_and_a_429_without_it_does_not_pause(clock):
    budget = RequestBudget(4, max_pause=0.3, clock=clock)
    [ticket] = take(budget, 1)
    budget.release(ticket, RATE_LIMITED, retry_after=3600)
    assert budget.try_acquire() == pytest.approx(0.3)
    clock.now += 0.3
    [ticket] = take(budget, 1)
    budget.release(ticket, RATE_LIMITED, retry_after=None)
    assert budget.limit == 1 and isinstance(budget.try_acquire(), Ticket)


def test_from_the_second_429_it_paces_at_what_sumit_accepted(clock, caplog):
    caplog.set_level(logging.INFO, logger="crmsync.sumit.budget")
    budget = RequestBudget(12, clock=clock)
    for ticket in take(budget, 5):  # a burst of five accepted...
        budget.release(ticket, ACCEPTED)
    tickets = take(budget, 2)
    budget.release(tickets[0], RATE_LIMITED, retry_after=1)  # ...then refused
    assert budget.rate is None  # one 429 alone may be a hiccup
    budget.release(tickets[1], RATE_LIMITED, retry_after=1)
    clock.now += 1  # the pause
    first = budget.try_acquire()
    assert isinstance(first, Ticket) and budget.rate == pytest.approx(4.5)  # 90% of 5 in the second before
    assert messages(caplog)[-1] == ("SUMIT accepted 5 requests in the 1.0 s before its 429: "
                                    "pacing requests at 4.5 per second")
    assert budget.try_acquire() == pytest.approx(1 / 4.5)  # the next one waits its slot
    clock.now += 1 / 4.5
    second = budget.try_acquire()
    assert isinstance(second, Ticket)
    for ticket in (first, second):
        budget.release(ticket, ACCEPTED)
    assert budget.rate == pytest.approx(4.7)  # each success adds 0.1 request/s


def test_max_rate_paces_from_the_first_request_and_caps_the_growth(clock):
    budget = RequestBudget(12, max_rate=2, clock=clock)
    [ticket] = take(budget, 1)
    assert budget.try_acquire() == pytest.approx(0.5)
    budget.release(ticket, ACCEPTED)
    assert budget.rate == 2 and budget.summary() is None


def test_a_pause_holds_every_thread_and_the_others_go_on_after_it():
    budget = RequestBudget(4)
    [ticket] = take(budget, 1)
    budget.release(ticket, RATE_LIMITED, retry_after=0.3)
    started = time.monotonic()
    waited: list[float] = []

    def worker() -> None:
        t = budget.acquire()
        waited.append(time.monotonic() - started)
        budget.release(t, ACCEPTED)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert len(waited) == 6 and min(waited) >= 0.29 and max(waited) < 2


def test_a_thread_waiting_for_a_place_gets_the_one_a_release_frees():
    budget = RequestBudget(1)
    first = budget.acquire()
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (budget.acquire(), got.set()))
    waiter.start()
    assert not got.wait(0.1)
    budget.release(first, ACCEPTED)
    assert got.wait(2)
    waiter.join(timeout=2)


@pytest.mark.parametrize("rate, count, latency", [(5, 200, 0.002), (20, 100, 0.002), (5, 200, 0.2)])
def test_a_push_against_a_rate_limit_stays_near_the_limit_with_few_429s(rate, count, latency):
    """One caller at a time on a moved clock against the sandbox's own token bucket: the whole
    loop of pauses, measurements and growth, with no socket and no waiting."""
    clock = Clock()
    budget, bucket = RequestBudget(12, clock=clock), RateLimit(rate, clock.now)
    started, accepted, refused = clock.now, 0, 0
    while accepted < count:
        taken = budget.try_acquire()
        if not isinstance(taken, Ticket):
            clock.now += taken
            continue
        admitted = bucket.admit(clock.now)
        clock.now += latency
        budget.release(taken, ACCEPTED if admitted else RATE_LIMITED, retry_after=None if admitted else 1)
        accepted, refused = accepted + admitted, refused + (not admitted)
    seconds = clock.now - started
    assert seconds <= 1.5 * count / rate + 1
    assert refused / (accepted + refused) <= 0.2


def test_the_connection_extra_max_requests_per_second_is_read_and_checked():
    from crmsync.core.errors import ConfigurationError
    from crmsync.sumit.connection import SUMIT_EXTRA_KEYS, SumitSettings, http_options

    def settings(**extra):
        return SumitSettings.from_connection("sumit_default", host="http://127.0.0.1:9", login="1000",
                                             password="k", extra=extra)

    assert settings().max_requests_per_second is None  # no cap unless asked for
    assert settings(max_requests_per_second="2.5").max_requests_per_second == 2.5
    with pytest.raises(ConfigurationError, match="extra.max_requests_per_second must be positive"):
        settings(max_requests_per_second=0)
    assert "max_requests_per_second" in SUMIT_EXTRA_KEYS  # crmsync's own: never sent as a header
    assert http_options({"max_requests_per_second": 3}, "sumit_default") == ({}, {})
