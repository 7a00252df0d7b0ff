"""crm_inbox: SUMIT's triggers between the receiver that stores them and the run that applies them.

The receiver (console/webhooks.py) writes with a plain psycopg connection and commits before
it answers; crm_apply_crm_events reads and closes them through its CustomerStore, in the
transaction that applies them, so a trigger is closed exactly when its change is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crmsync.core.triggers import TriggerEvent
from crmsync.db import sql
from crmsync.db.store import CustomerStore

APPLIED, IGNORED, HELD, REJECTED = "applied", "ignored", "held", "rejected"
KEEP_DAYS = 30  # triggers done this long ago are deleted


@dataclass(frozen=True)
class PendingTrigger:
    id: int
    entity_id: str
    action: str
    folder: str | None
    seq: int  # the row's version when read: it is closed only if still this one
    attempts: int  # earlier runs that could not read its customer
    hits: int  # triggers collapsed into it


@dataclass(frozen=True)
class Closing:
    trigger: PendingTrigger
    status: str  # applied, ignored, held or rejected
    reason: str | None = None


def receive(conn: Any, events: Sequence[TriggerEvent]) -> tuple[int, int]:
    """Store a request's triggers and commit: (new rows, triggers collapsed into pending ones).

    The last trigger of an id a request repeats wins, as it would have arriving second.
    """
    last = {event.entity_id: event for event in events}
    hits = Counter(event.entity_id for event in events)
    rows = list(last.values())
    with conn.cursor() as cur:
        cur.execute(sql.load("inbox_receive"), {
            "entity_id": [e.entity_id for e in rows], "action": [e.action for e in rows],
            "folder": [e.folder for e in rows], "shape": [e.shape for e in rows],
            "hits": [hits[e.entity_id] for e in rows],
        })
        inserted = sum(1 for (new,) in cur.fetchall() if new)
    conn.commit()
    return inserted, len(events) - inserted


def pending_depth(conn: Any) -> int:
    """Triggers stored and not applied yet (the receiver's gauge)."""
    with conn.cursor() as cur:
        cur.execute(sql.load("inbox_pending_depth"))
        return int(cur.fetchone()[0])


def reject(conn: Any, reason: str, excerpt: str) -> None:
    """Keep a refused body's reason and start, for a person; commit."""
    with conn.cursor() as cur:
        cur.execute(sql.load("inbox_reject"), {"reason": reason, "excerpt": excerpt})
    conn.commit()


def pending(store: CustomerStore, *, after_id: int, limit: int) -> list[PendingTrigger]:
    rows = store.fetch("inbox_pending", {"after_id": after_id, "limit": limit})
    return [PendingTrigger(id=r[0], entity_id=r[1], action=r[2], folder=r[3], seq=r[4], attempts=r[5], hits=r[6])
            for r in rows]


def close(store: CustomerStore, closings: Sequence[Closing]) -> set[int]:
    """Close these triggers as this run's (not committed); returns the ids closed. A trigger
    that came again since it was read is not closed: the next run reads its customer again."""
    if not closings:
        return set()
    rows = store.fetch("inbox_done", {
        "id": [c.trigger.id for c in closings], "seq": [c.trigger.seq for c in closings],
        "status": [c.status for c in closings], "reason": [c.reason for c in closings], **store.run_params(),
    })
    return {row[0] for row in rows}


def count_failed(store: CustomerStore, failures: Sequence[tuple[PendingTrigger, str]]) -> dict[int, int]:
    """One more attempt for triggers whose customer could not be read; id -> attempts so far."""
    if not failures:
        return {}
    rows = store.fetch("inbox_failed", {"id": [t.id for t, _ in failures], "error": [e for _, e in failures]})
    return {row[0]: row[1] for row in rows}


def prune(store: CustomerStore, keep_days: int = KEEP_DAYS) -> int:
    return len(store.fetch("inbox_prune", {"keep_days": keep_days}))


def flag_missing(store: CustomerStore, sumit_ids: Sequence[str], *, at: datetime) -> int:
    """Flag these linked customers as missing in the CRM; how many were newly flagged."""
    if not sumit_ids:
        return 0
    return len(store.fetch("flag_missing_ids", {"ids": list(sumit_ids), "at_text": at.isoformat()}))


def unflag_back(store: CustomerStore, sumit_ids: Sequence[str]) -> int:
    """Unflag these customers if flagged as missing: SUMIT showed them again."""
    if not sumit_ids:
        return 0
    return len(store.fetch("unflag_back_ids", {"ids": list(sumit_ids)}))


def counts(conn: Any) -> dict[str, Any]:
    """Triggers by status and the oldest pending one's age (seconds), for logs and the console."""
    with conn.cursor() as cur:
        cur.execute(sql.load("inbox_counts"))
        rows = cur.fetchall()
    result: dict[str, Any] = {status: n for status, n, _ in rows}
    result["oldest_pending_seconds"] = next((age for status, _, age in rows if status == "pending"), None)
    return result
