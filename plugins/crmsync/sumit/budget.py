"""RequestBudget: how many requests one task sends SUMIT at once, and how fast, learned from its 429s.

Pure (no Airflow, no sockets). SumitHook owns one budget per hook, that is per task, and every
try of every call goes through it (pushers and listing reads alike), so a 429 slows them all::

    ticket = budget.acquire()          # waits for its turn
    ...send the request...
    budget.release(ticket, ACCEPTED)   # or RATE_LIMITED with the Retry-After, or OTHER

Until SUMIT answers 429 the budget limits nothing: it starts ``burst`` times as wide as the
configured concurrency (SumitHook: ``BURST`` for pushes, whose thread pool is that big, so
nobody waits) and costs one uncontended lock per call. SUMIT documents no rate limit, so the
task starts optimistic and lets the first 429 say otherwise. On a 429:

- every caller waits until Retry-After has passed (at most ``max_pause``), so no thread keeps
  hammering a server that asked for a pause;
- the concurrency limit halves (never below 1), once per episode: the 429s of requests sent
  before the cut do not cut again. The first cut halves the configured concurrency, not the
  burst: a SUMIT that refused the burst is not sent it again. The limit grows back by one after
  as many successes as the limit, up to the configured concurrency;
- from the second 429 on, requests are also paced. Once the pause is over the budget counts
  the requests SUMIT accepted since the episode before (at most 10 s back; the first time,
  the second or Retry-After before the 429) and sends at 90% of that rate. SUMIT refused at
  both ends of that span, so what it accepted in between is its rate, burst included. Each
  success then adds 0.1 request/s (about 10% a second), so the pace creeps back up until the
  next 429 measures again.

A concurrency limit alone cannot hold a fast server to a rate (one request at a time is
hundreds a second); a rate alone would forget the pause. ``max_rate`` (the connection's
``max_requests_per_second``) paces from the first request and caps the growth.
A cut is logged once as a warning, the pace learned and the return to the configured
concurrency once each at INFO; never a line per request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

ACCEPTED = "accepted"  # SUMIT answered: a success, or a refusal that is not a rate limit
RATE_LIMITED = "rate_limited"  # HTTP 429
OTHER = "other"  # no answer, or a server error: says nothing about the rate

BURST = 2  # pushes: until SUMIT's first 429, this many times push_concurrency at once
RATE_MARGIN = 0.9  # pace at this share of the rate SUMIT accepted
RATE_GROWTH = 0.1  # requests/s added per success while paced
MIN_RATE = 0.05  # requests/s: never slower, whatever was measured
MEASURE_MAX_SECONDS = 10.0  # the longest span the accepted rate is measured over
_HISTORY = 8192  # send times of the latest accepted requests, to measure that rate

Notes = list[tuple[int, str]]  # log lines made under the lock, written after it


class Ticket(NamedTuple):
    """One try's turn: the episode it was sent in (429 cuts before it) and when."""

    episode: int
    sent_at: float


class RequestBudget:
    """Concurrency and pace shared by every request of one task; thread-safe."""

    def __init__(self, concurrency: int, *, burst: int = 1, max_rate: float | None = None, max_pause: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, log: logging.Logger | None = None):
        self.max_concurrency = max(1, int(concurrency))  # what the limit grows back to after a 429
        self.limit = self.max_concurrency * max(1, int(burst))  # requests at once
        self.max_rate = max_rate
        self.rate = max_rate  # requests per second; None: not paced
        self.max_pause = max_pause
        self.requests = 0  # tries released
        self.rate_limited = 0  # of which answered 429
        self.episodes = 0  # 429s that cut the limit
        self._clock = clock
        self._log = log or logging.getLogger(__name__)
        self._cond = threading.Condition(threading.Lock())
        self._in_flight = 0
        self._pause_until = -math.inf
        self._next_slot = -math.inf
        self._since_change = 0  # successes since the limit last changed
        self._accepted: deque[float] = deque(maxlen=_HISTORY)
        self._measure: tuple[float, float] | None = None  # (from, to): the span to learn the rate from
        self._cut_at: float | None = None  # when the 429 that began the last episode came

    # -- the two calls ---------------------------------------------------------------------

    def acquire(self) -> Ticket:
        """Wait until this try may go (the pause over, a free place, its pacing slot); take its turn."""
        notes: Notes = []
        with self._cond:
            while True:
                taken = self._take(notes)
                if isinstance(taken, Ticket):
                    break
                self._cond.wait(None if taken == math.inf else taken)
        self._emit(notes)
        return taken

    def try_acquire(self) -> Ticket | float:
        """A turn if a try may go now, else the seconds to wait at most (``math.inf``: until a release)."""
        notes: Notes = []
        with self._cond:
            taken = self._take(notes)
        self._emit(notes)
        return taken

    def release(self, ticket: Ticket, outcome: str, *, retry_after: float | None = None) -> None:
        """The try's outcome: ACCEPTED, RATE_LIMITED (with the answer's Retry-After) or OTHER."""
        notes: Notes = []
        with self._cond:
            self._in_flight -= 1
            self.requests += 1
            if outcome == ACCEPTED:
                self._accepted.append(ticket.sent_at)
                if self.episodes:
                    self._grow(notes)
            elif outcome == RATE_LIMITED:
                self.rate_limited += 1
                self._slow_down(ticket, retry_after, notes)
            if self.episodes or self.rate is not None:
                self._cond.notify_all()  # waiting for a pause, a slot or a place: each looks again
            else:
                self._cond.notify()
        self._emit(notes)

    def _take(self, notes: Notes) -> Ticket | float:
        now = self._clock()
        if now < self._pause_until:
            return self._pause_until - now
        if self._measure is not None:
            self._learn_rate(notes)
        if self._in_flight >= self.limit:
            return math.inf
        if self.rate is not None:
            if now < self._next_slot:
                return self._next_slot - now
            interval = 1 / self.rate
            # A late wake-up keeps the schedule; after a quiet spell it starts afresh (no burst).
            slot = self._next_slot if now - self._next_slot < interval else now
            self._next_slot = slot + interval
        self._in_flight += 1
        return Ticket(self.episodes, now)

    # -- what a 429 and a success change -----------------------------------------------------

    def _slow_down(self, ticket: Ticket, retry_after: float | None, notes: Notes) -> None:
        now = self._clock()
        if retry_after is not None:
            self._pause_until = max(self._pause_until, now + min(max(0.0, retry_after), self.max_pause))
        fresh = ticket.episode == self.episodes  # sent after the last cut: a new episode
        # Pace from the second 429 on (one alone may be a hiccup); once paced, each new episode measures.
        if self.rate_limited >= 2 and self._measure is None and (fresh or self.rate is None):
            span = max(1.0, retry_after or 0.0)
            start = now - span
            if self._cut_at is not None and now - self._cut_at > span:
                start = max(self._cut_at, now - max(span, MEASURE_MAX_SECONDS))
            self._measure = (start, now)  # learnt after the pause, once the tries in flight have answered
        if fresh:
            self._cut_at = now
            self.episodes += 1
            before, self.limit = self.limit, max(1, min(self.limit, self.max_concurrency) // 2)
            self._since_change = 0
            if self.limit != before:
                said = f"Retry-After {retry_after:g} s" if retry_after is not None else "no Retry-After"
                notes.append((logging.WARNING, f"SUMIT is rate limiting (HTTP 429, {said}): sending at most "
                                               f"{_requests(self.limit)} at once"))

    def _learn_rate(self, notes: Notes) -> None:
        start, end = self._measure  # type: ignore[misc]
        self._measure = None
        accepted = sum(1 for sent in self._accepted if start < sent <= end)
        if not accepted:
            return  # nothing to learn from: the next 429 tries again
        measured = accepted / (end - start)
        rate = RATE_MARGIN * (measured if self.rate is None else min(measured, self.rate))
        self.rate = max(MIN_RATE, rate if self.max_rate is None else min(rate, self.max_rate))
        notes.append((logging.INFO, f"SUMIT accepted {accepted} requests in the {end - start:.1f} s before its "
                                    f"429: pacing requests at {self.rate:.1f} per second"))

    def _grow(self, notes: Notes) -> None:
        if self.limit < self.max_concurrency:
            self._since_change += 1
            if self._since_change >= self.limit:
                self.limit += 1
                self._since_change = 0
                back = self.limit == self.max_concurrency
                again = " (the configured concurrency again)" if back else ""
                notes.append((logging.INFO if back else logging.DEBUG,
                              f"SUMIT accepted {_requests(self.limit - 1)} in a row: sending at most "
                              f"{_requests(self.limit)} at once{again}"))
        if self.rate is not None and (self.max_rate is None or self.rate < self.max_rate):
            self.rate += RATE_GROWTH
            if self.max_rate is not None:
                self.rate = min(self.rate, self.max_rate)

    def _emit(self, notes: Notes) -> None:
        for level, message in notes:  # outside the lock: a slow log handler never holds up the others
            self._log.log(level, message)

    # -- reporting --------------------------------------------------------------------------

    def summary(self) -> str | None:
        """One line on how rate limiting went, or None when SUMIT never answered 429."""
        with self._cond:
            if not self.rate_limited:
                return None
            pace = f", pacing at {self.rate:.1f} requests per second" if self.rate is not None else ""
            return (f"SUMIT answered HTTP 429 to {self.rate_limited} of {self.requests} requests; this task ended "
                    f"sending at most {self.limit} at once{pace}")


def _requests(count: int) -> str:
    return f"{count} request{'' if count == 1 else 's'}"
