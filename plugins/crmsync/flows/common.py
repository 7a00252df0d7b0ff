"""What the flows share: the SUMIT client they need, the clock, and how a give-up is counted."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Protocol

from crmsync.core.model import LocalCustomer, PushResult
from crmsync.core.pulled import PulledPage
from crmsync.core.summary import SyncCounts
from crmsync.db.store import GaveUp

PROGRESS_EVERY_SECONDS = 10.0


class CrmClient(Protocol):
    creates_are_idempotent: bool

    def iter_customer_pages(self) -> Iterator[PulledPage]: ...

    def push_customer(self, customer: LocalCustomer) -> PushResult: ...


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def note_gave_up(counts: SyncCounts, gave_up: list[GaveUp]) -> None:
    counts.gave_up += len(gave_up)
    for g in gave_up:
        what = f"customer {g.record_key}" if g.phase == "push" else f"CRM record {g.record_key}"
        counts.add_reason(f"{g.phase}: gave up on {what} after {g.attempts} failed attempts")


@contextlib.contextmanager
def tuned_for_bulk_work() -> Iterator[None]:
    """Two interpreter settings for a pull's or a push's duration, put back afterwards (measured
    on a 100,000-customer pull and on 10,000 pushes, docs/performance.md):

    - the garbage collector leaves alone the objects that existed before (a task process holds
      a million, Airflow's among them): the objects the work creates trigger full collections,
      and each one walked that whole heap, 0.4 s in all for a pull. Objects the work creates
      are collected as usual. (Where the process had frozen objects itself, as a
      forking parent does, they stay frozen: only a freeze of our own is undone.)
    - threads hand the interpreter over every millisecond instead of every five: the thread
      waiting for PostgreSQL's answer otherwise waits up to 5 ms more for the page-preparing
      thread to let go, on every page (0.5 s per 100 pages, with the database idle); a pusher
      whose answer arrived waits so for the others.
    """
    interval, frozen_before = sys.getswitchinterval(), gc.get_freeze_count()
    gc.freeze()
    sys.setswitchinterval(min(interval, 0.001))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if not frozen_before:
            gc.unfreeze()
