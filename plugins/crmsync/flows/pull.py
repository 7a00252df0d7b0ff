"""The pull: every CRM customer into the table, a page at a time, with the three-way merge."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from crmsync.flows.common import CrmClient, note_gave_up, utcnow
from crmsync.flows.lost_creates import link_lost_creates
from crmsync.flows.read_ahead import read_ahead
from crmsync.merge import ConflictPolicy, Outcome, dedupe_by_id, plan_pull
from crmsync.model import CrmCustomer, PulledPage, RejectedRecord
from crmsync.store import CustomerStore, encode_pulled
from crmsync.summary import SyncCounts


def run_pull(
    client: CrmClient,
    store: CustomerStore,
    *,
    policy: ConflictPolicy = ConflictPolicy.NEWER_WINS,
    full_resync: bool = False,
    log: logging.Logger,
    now: Callable[[], datetime] = utcnow,
) -> SyncCounts:
    """Bring every CRM customer into the table, a page at a time, committing each page.

    A page is one statement that inserts the new customers and reads the state of the changed
    ones, and at most three writes more, whatever its size. Committing per
    page means a run cut off half way keeps what it merged; running again finishes the job,
    since records already merged compare as unchanged.

    Only a complete pull (every page read) then flags linked customers the CRM no longer
    lists (``metadata.crm_missing_since``), unflags those that are back, and resolves queued
    rejections the CRM has fixed; a pull that stops half way flags and resolves nothing.
    """
    with _tuned_for_bulk_work():
        return _pull(client, store, policy=policy, full_resync=full_resync, log=log, now=now)


@contextlib.contextmanager
def _tuned_for_bulk_work() -> Iterator[None]:
    """Two interpreter settings for the pull's duration, put back afterwards (measured on a
    100,000-customer pull, docs/performance.md):

    - the garbage collector leaves alone the objects that existed before the pull (a task
      process holds a million, Airflow's among them): the objects the pull creates trigger
      full collections, and each one walked that whole heap, 0.4 s in all. Objects the pull
      creates are collected as usual. (Where the process had frozen objects itself, as a
      forking parent does, they stay frozen: only a freeze of our own is undone.)
    - threads hand the interpreter over every millisecond instead of every five: the thread
      waiting for PostgreSQL's answer otherwise waits up to 5 ms more for the page-preparing
      thread to let go, on every page (0.5 s per 100 pages, with the database idle).
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


def _pull(client: CrmClient, store: CustomerStore, *, policy: ConflictPolicy, full_resync: bool,
          log: logging.Logger, now: Callable[[], datetime]) -> SyncCounts:
    counts = SyncCounts()
    pulled_at = now()
    if store.dry_run:
        store.ensure_schema()  # inside the dry run's transaction: an empty database works too
    store.start_seen()
    lost_creates = store.unconfirmed_creates()  # created by a run that died before storing the answer
    still_rejected: list[str] = []
    for prepared in read_ahead(_prepared(client.iter_customer_pages())):
        page = prepared.page
        link_lost_creates(page.customers, lost_creates, store, log)
        page_counts, rejected_keys = _merge_page(prepared, store, policy=policy, full_resync=full_resync,
                                                 pulled_at=pulled_at)
        still_rejected += rejected_keys
        store.commit()
        counts = counts.merge(page_counts)
        log.info(
            "Page %d: %d records (created %d, updated %d, unchanged %d, skipped %d, conflicts %d); "
            "%d fetched so far",
            page.number, page_counts.fetched, page_counts.created, page_counts.updated,
            page_counts.unchanged, page_counts.skipped, page_counts.conflicts, counts.fetched,
        )
    store.clear_create_sent(lost_creates)  # not in a complete listing: never created, send again
    counts.vanished, back = store.flag_vanished(pulled_at=pulled_at)
    store.resolve_pull_errors_after_complete_pull(still_rejected)
    store.commit()
    if counts.vanished or back:
        log.warning("%d customers are no longer listed by the CRM and were flagged crm_missing_since; "
                    "%d flagged earlier are listed again.", counts.vanished, back)
    counts.considered = counts.fetched
    return counts



@dataclass
class _PreparedPage:
    """A page made ready for the database in read_ahead's thread, so that this CPU work (the
    fingerprints and the JSON) overlaps the database's merge of the page before."""

    page: PulledPage
    customers: list[CrmCustomer]  # one per CRM id: the last copy of an id the page repeats
    duplicates: list[CrmCustomer]  # the earlier copies
    rows: str  # ``customers`` encoded for CustomerStore.pull_page


def _prepared(pages: Iterator[PulledPage]) -> Iterator[_PreparedPage]:
    try:
        for page in pages:
            customers, duplicates = dedupe_by_id(page.customers)
            yield _PreparedPage(page, customers, duplicates, encode_pulled(customers))
    finally:
        close = getattr(pages, "close", None)
        if close is not None:  # a generator: let it release its connection now
            close()


def _merge_page(
    prepared: _PreparedPage, store: CustomerStore, *, policy: ConflictPolicy, full_resync: bool, pulled_at: datetime
) -> tuple[SyncCounts, list[str]]:
    page, customers = prepared.page, prepared.customers
    counts = SyncCounts(fetched=len(page.customers) + len(page.rejected))
    rejected = page.rejected + [
        RejectedRecord(
            reason="CustomerID appears more than once on the same page; the last copy was used",
            sumit_id=c.sumit_id, excerpt={"CustomerID": c.sumit_id, "Name": c.fields.get("name")},
        )
        for c in prepared.duplicates
    ]
    for r in rejected:
        counts.add_reason(f"pull: {r.reason}")
    counts.skipped = len(rejected)

    inserted, states = store.pull_page(prepared.rows, also_seen=[r.sumit_id for r in rejected if r.sumit_id],
                                       synced_at=pulled_at, full_resync=full_resync)
    # A customer new to the table was inserted whole; one whose CRM copy did not change needs
    # nothing (plan_pull's rules); the store returned the states of the rest.
    decisions = [
        plan_pull(c, states[c.sumit_id], policy=policy, pulled_at=pulled_at, full_resync=full_resync)
        for c in customers if c.sumit_id in states
    ]
    updated_ids = store.apply_pull(decisions, synced_at=pulled_at, policy=policy.value)
    rejected_keys, gave_up = store.record_rejected(rejected)
    note_gave_up(counts, gave_up)

    counts.created = inserted
    counts.updated = sum(1 for d in decisions if d.outcome is Outcome.UPDATED and d.local_id in updated_ids)
    counts.unchanged = len(customers) - counts.created - counts.updated
    counts.conflicts = sum(1 for d in decisions if d.conflict is not None)
    return counts, rejected_keys

