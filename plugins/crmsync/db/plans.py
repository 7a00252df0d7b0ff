"""Plans that wait for a person, and the listing a held pull read: kept in PostgreSQL
(crm_sync_plans, crm_sync_listing) so that any worker can ask for the approval and apply it.
Knows nothing of Airflow; SQL in include/sql/plan_*.sql."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from crmsync.core.guard import EXAMPLES_PER_FIELD, FieldChange, PullPlan
from crmsync.core.model import RejectedRecord
from crmsync.db.store import CustomerStore

AWAITING, APPLIED, REJECTED = "awaiting_approval", "applied", "rejected"


@dataclass(frozen=True)
class HeldPlan:
    kind: str
    status: str
    reasons: list[str]
    plan: dict[str, Any]
    settings: dict[str, Any]


def linked_count(store: CustomerStore) -> int:
    return store.fetch("count_linked")[0][0]


def pull_plan(store: CustomerStore, existing: int) -> PullPlan:
    """What this run's pull did so far, in its transaction: read from its journal rows."""
    run = store.run_params()
    created, changed, vanished = store.fetch("pull_plan_counts", run)[0]
    fields = [FieldChange(field=f, changed=n, blanked=b, examples=examples)
              for f, n, b, examples in store.fetch("pull_plan_fields", {**run, "examples": EXAMPLES_PER_FIELD})]
    return PullPlan(existing=existing, created=created, changed=changed, vanished=vanished, fields=fields)


def hold(store: CustomerStore, kind: str, *, plan: dict[str, Any], reasons: Sequence[str],
         settings: dict[str, Any], listing: "ListingSpool | None" = None) -> None:
    """Record a plan that waits for approval (and the listing it was computed from); committed."""
    run = store.run_params()
    store.fetch("plan_delete_listing", run)
    if listing is not None:
        listing.copy_into(store)
    store.fetch("plan_hold", {**run, "kind": kind, "reasons": list(reasons), "plan": json.dumps(plan, default=str),
                               "settings": json.dumps(settings, default=str)})
    store.commit()


def held(store: CustomerStore, kind: str) -> HeldPlan | None:
    rows = store.fetch("plan_get", {**store.run_params(), "kind": kind})
    if not rows:
        return None
    status, reasons, plan, settings = rows[0]
    return HeldPlan(kind, status, list(reasons), plan, settings)


def close(store: CustomerStore, kind: str, status: str) -> None:
    """Mark the run's plan applied or rejected and drop its listing (not committed)."""
    run = store.run_params()
    store.fetch("plan_close", {**run, "kind": kind, "status": status})
    store.fetch("plan_delete_listing", run)


def listing_pages(store: CustomerStore) -> Iterator[tuple[int, int, str, list[RejectedRecord], list[str]]]:
    """A held pull's listing, page by page: (page, records fetched, encoded rows, rejected, the
    CRM ids of the records found unchanged and not mapped)."""
    page = -1
    while True:
        rows = store.fetch("plan_listing_page", {**store.run_params(), "after": page})
        if not rows:
            return
        page, fetched, encoded, rejected, unchanged = rows[0]
        yield (page, fetched, encoded, [RejectedRecord(reason=r, sumit_id=i, excerpt=e) for r, i, e in rejected],
               unchanged)


class ListingSpool:
    """The pages of a pull, spooled to a local file while it runs (a few milliseconds a page), so
    that a pull the guard holds can store exactly what it read; a pull that is not held never
    writes them to the database."""

    def __init__(self) -> None:
        self._file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._lock = threading.Lock()  # the read-ahead thread and the pull's own add pages

    def add(self, page: int, fetched: int, rows: bytes, rejected: Sequence[RejectedRecord],
            unchanged: Sequence[str] = ()) -> None:
        excerpt = json.dumps([[r.reason, r.sumit_id, r.excerpt] for r in rejected], ensure_ascii=False, default=str)
        same = json.dumps(list(unchanged), ensure_ascii=False)
        # JSON text has no raw tab or newline: one line per page, tab-separated.
        line = f"{page}\t{fetched}\t{excerpt}\t{same}\t{rows.decode('utf-8')}\n"
        with self._lock:
            self._file.write(line)

    def copy_into(self, store: CustomerStore) -> None:
        run = store.run_params()
        self._file.flush()
        self._file.seek(0)
        with store.conn.cursor() as cur:
            with cur.copy("COPY crm_sync_listing (dag_id, dag_run_id, page, fetched, rejected, unchanged, rows) "
                          "FROM STDIN") as copy:
                for line in self._file:
                    page, fetched, rejected, unchanged, rows = line.rstrip("\n").split("\t", 4)
                    copy.write_row((run["dag_id"], run["dag_run_id"], int(page), int(fetched), rejected, unchanged,
                                    rows))
        store.round_trips += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ListingSpool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def push_size(store: CustomerStore, *, ids: Sequence[int] | None, only_changed: bool,
              retry_queue: bool) -> tuple[int, list[dict[str, Any]]]:
    """How many customers a push with these arguments would send, and the first few of them."""
    count, examples = store.fetch("count_push_candidates", {
        "ids": list(ids) if ids is not None else None, "only_changed": only_changed, "retry_queue": retry_queue,
    })[0]
    return count, examples or []
