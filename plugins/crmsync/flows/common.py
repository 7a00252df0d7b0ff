"""What the flows share: the SUMIT client they need, the clock, and how a give-up is counted."""

from __future__ import annotations

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

