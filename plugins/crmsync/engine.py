"""How a sync moves: the pull and push loops that join the SUMIT client and the store.

No Airflow here: the operators hand in a client (SumitHook), a store (CustomerStore) and a
logger, so the same loops run in tests, in the benchmark and in any scheduler.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from psycopg import IntegrityError

from crmsync.errors import SumitAuthError, SumitError, SumitPermanentError, SumitProtocolError, SumitTransientError
from crmsync.merge import ConflictPolicy, Outcome, dedupe_by_id, plan_pull
from crmsync.model import CrmCustomer, LocalCustomer, PulledPage, PushResult, RejectedRecord
from crmsync.store import CustomerStore, ErrorRow, GaveUp, encode_pulled
from crmsync.summary import SyncCounts

PROGRESS_EVERY_SECONDS = 10.0
T = TypeVar("T")


class CrmClient(Protocol):
    creates_are_idempotent: bool

    def iter_customer_pages(self) -> Iterator[PulledPage]: ...

    def push_customer(self, customer: LocalCustomer) -> PushResult: ...


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# -- pull ---------------------------------------------------------------------------------------


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
        _link_lost_creates(page.customers, lost_creates, store, log)
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


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items`` while a background thread already produces the next ``depth`` of them.

    The pull fetches, decodes and encodes page n+1 this way while the database merges page n.
    At most ``depth`` + 2 items exist at once. An error in the producing thread is raised
    here, at the item it would have been; when the consumer stops early the thread stops at
    its next item.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as error:  # handed to the consumer, raised there
            put(("error", error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator: let it release what it holds now
                close()

    worker = threading.Thread(target=produce, name="crmsync-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


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
    _note_gave_up(counts, gave_up)

    counts.created = inserted
    counts.updated = sum(1 for d in decisions if d.outcome is Outcome.UPDATED and d.local_id in updated_ids)
    counts.unchanged = len(customers) - counts.created - counts.updated
    counts.conflicts = sum(1 for d in decisions if d.conflict is not None)
    return counts, rejected_keys


def _link_lost_creates(customers: Sequence[CrmCustomer], lost: dict[int, str], store: CustomerStore,
                       log: logging.Logger) -> None:
    """Link CRM customers created by a run that died before storing SUMIT's answer, so they are
    neither inserted as new local rows nor created again in SUMIT. They carry the local id they
    were created with where the listing shows it (guide); elsewhere (rest's listing has no
    ExternalIdentifier) a CRM customer whose content is exactly what one, and only one, lost
    create sent is taken as it. ``lost`` loses the ids found."""
    if not lost:
        return
    found = {c.external_id: c.sumit_id for c in customers if c.external_id in lost}
    by_content: dict[str, list[int]] = {}
    for local_id, fingerprint in lost.items():
        if local_id not in found:
            by_content.setdefault(fingerprint, []).append(local_id)
    for c in customers:
        candidates = by_content.get(c.fingerprint) if c.external_id is None else None
        if candidates is not None and len(candidates) == 1:
            found[candidates[0]] = c.sumit_id
            del by_content[c.fingerprint]
    linked = store.link_created(found)
    for local_id in linked:
        del lost[local_id]
    if linked:
        log.warning("%d customers created in SUMIT by an interrupted run were found in its listing and linked "
                    "(not created again): local ids %s", len(linked), ", ".join(map(str, sorted(linked)[:20])))


def find_lost_creates(client: CrmClient, store: CustomerStore, log: logging.Logger) -> None:
    """Before a push: look up, in SUMIT's listing, customers whose create an earlier run sent
    but whose answer it never stored (it was killed), so they are not created a second time.
    Needed only where a create is not idempotent (the guide profile), and only after a crash."""
    if client.creates_are_idempotent:
        return
    lost = store.unconfirmed_creates()
    if not lost:
        return
    log.warning("%d customers were being created in SUMIT when an earlier run stopped; reading SUMIT's "
                "customer list to find them before sending them again.", len(lost))
    for page in read_ahead(client.iter_customer_pages()):
        _link_lost_creates(page.customers, lost, store, log)
    store.clear_create_sent(lost)
    store.commit()
    if lost:
        log.info("%d of them are not in SUMIT: their creates are sent again.", len(lost))


def _note_gave_up(counts: SyncCounts, gave_up: list[GaveUp]) -> None:
    counts.gave_up += len(gave_up)
    for g in gave_up:
        what = f"customer {g.record_key}" if g.phase == "push" else f"CRM record {g.record_key}"
        counts.add_reason(f"{g.phase}: gave up on {what} after {g.attempts} failed attempts")


# -- push ---------------------------------------------------------------------------------------


class SumitUnavailable(SumitError):
    """Too many pushes in a row met transient faults: SUMIT is down, stop hammering it."""


def run_push(
    client: CrmClient,
    store: CustomerStore,
    *,
    customer_ids: Sequence[int] | None,
    only_changed: bool,
    concurrency: int,
    retry_queue: bool = False,
    queue_only: bool = False,
    log: logging.Logger,
    now: Callable[[], datetime] = utcnow,
    flush_every: int = 100,
) -> SyncCounts:
    """Send the chosen customers to SUMIT, ``concurrency`` at a time, each on its own.

    With ``retry_queue``, customers whose last push failed go first, changed or not;
    ``queue_only`` sends nothing else. A success resolves a customer's queued failure.

    A refused record is recorded and the rest go on; refused credentials, or a run of
    transient faults longer than the concurrency, stop the run. Accepted customers are
    written back (CRM id, fingerprints) in batches; a customer SUMIT just created is written
    back before more are sent, so its new id is never lost.
    """
    counts = SyncCounts()
    ids = sorted(set(customer_ids)) if customer_ids is not None else None
    if store.dry_run and not store.table_exists():
        log.info("Dry run: the sumit_customers table does not exist yet, so there is nothing to push.")
        return counts
    if ids:
        unknown = store.unknown_ids(ids)
        if unknown:
            shown = ", ".join(map(str, unknown[:20])) + (" ..." if len(unknown) > 20 else "")
            log.warning("%d requested ids match no local customer and are not sent: %s", len(unknown), shown)
            counts.skipped += len(unknown)
            counts.add_reason(f"push: no local customer with id {shown}")
            store.record_errors(ErrorRow(phase="push", error="no local customer has this id", customer_id=i,
                                         retryable=False) for i in unknown)
            store.commit()
    if not store.dry_run:
        find_lost_creates(client, store, log)
    queued = store.pending_push_ids(ids) if retry_queue or queue_only else []
    if queued:
        log.info("Retrying %d customers whose last push failed first: %s", len(queued),
                 ", ".join(map(str, queued[:20])) + (" ..." if len(queued) > 20 else ""))
    # (candidates, ids to leave out): the queue first, then the rest without the queue again.
    passes = [(store.push_candidates(ids=queued, only_changed=False), frozenset())] if queued else []
    if not queue_only:
        passes.append((store.push_candidates(ids=ids, only_changed=only_changed), frozenset(queued)))

    limit = max(1, concurrency)
    batch = _PushBatch(store, counts, now=now, flush_every=flush_every, streak_limit=max(3, limit))
    last_progress = time.monotonic()
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="sumit-push") as pool:
        in_flight: dict[Future, LocalCustomer] = {}
        try:
            for customer in _candidates(passes, before_chunk=None if store.dry_run else _mark_creates(store)):
                if not _has_name(customer):
                    batch.skip(customer, "customer has no name; SUMIT requires one")
                elif store.dry_run:
                    counts.pushed += 1  # would be pushed
                else:
                    in_flight[pool.submit(client.push_customer, customer)] = customer
                    while len(in_flight) >= 2 * limit:
                        batch.collect(_wait_some(in_flight))
                if time.monotonic() - last_progress >= PROGRESS_EVERY_SECONDS:
                    log.info("Pushed %d so far (failed %d, skipped %d)", counts.pushed, counts.failed, counts.skipped)
                    last_progress = time.monotonic()
            while in_flight:
                batch.collect(_wait_some(in_flight))
        except BaseException:
            for future in in_flight:
                future.cancel()
            batch.collect([(f, c) for f, c in in_flight.items() if f.done() and not f.cancelled()], raise_fatal=False)
            batch.flush()
            raise
        batch.flush()
    counts.considered = counts.pushed + counts.failed + counts.skipped
    return counts


def _candidates(
    passes: list[tuple[Iterator[list[LocalCustomer]], frozenset[int]]],
    before_chunk: Callable[[list[LocalCustomer]], None] | None = None,
) -> Iterator[LocalCustomer]:
    for chunks, leave_out in passes:
        for chunk in chunks:
            chosen = [customer for customer in chunk if customer.id not in leave_out]
            if before_chunk is not None:
                before_chunk(chosen)
            yield from chosen


def _has_name(customer: LocalCustomer) -> bool:
    return bool((customer.fields.get("name") or "").strip())


def _mark_creates(store: CustomerStore) -> Callable[[list[LocalCustomer]], None]:
    """Commit ``create_sent_at`` for a chunk's creates before any of them is sent."""

    def mark(chunk: list[LocalCustomer]) -> None:
        creates = [c.id for c in chunk if c.sumit_id is None and _has_name(c)]  # the nameless are never sent
        if creates:
            store.mark_create_sent(creates)
            store.commit()

    return mark


def _wait_some(in_flight: dict[Future, LocalCustomer]) -> list[tuple[Future, LocalCustomer]]:
    done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
    return [(future, in_flight.pop(future)) for future in done]


def _surely_not_carried_out(error: BaseException) -> bool:
    """SUMIT refused the request (an answer saying so), or never received it."""
    if isinstance(error, SumitTransientError):
        return not error.maybe_processed
    return isinstance(error, SumitPermanentError) and not isinstance(error, SumitProtocolError)


class _PushBatch:
    """Collects push outcomes on the main thread and writes them back in batches."""

    def __init__(
        self, store: CustomerStore, counts: SyncCounts, *, now: Callable[[], datetime], flush_every: int, streak_limit: int
    ):
        self.store, self.counts, self.now = store, counts, now
        self.flush_every, self.streak_limit = flush_every, streak_limit
        self.accepted: list[tuple[LocalCustomer, PushResult]] = []
        self.errors: list[ErrorRow] = []
        self.not_created: list[int] = []  # creates SUMIT surely did not carry out: nothing to look up
        self.transient_streak = 0  # transient failures since the last success

    def skip(self, customer: LocalCustomer, reason: str) -> None:
        self.counts.skipped += 1
        self.counts.add_reason(f"push: {reason}")
        self.errors.append(ErrorRow(phase="push", error=reason, customer_id=customer.id,
                                    sumit_customer_id=customer.sumit_id, fingerprint=customer.fingerprint))

    def collect(self, finished: list[tuple[Future, LocalCustomer]], *, raise_fatal: bool = True) -> None:
        fatal: BaseException | None = None
        created = False
        for future, customer in finished:
            error = future.exception()
            if error is None:
                self.accepted.append((customer, future.result()))
                self.counts.pushed += 1
                self.transient_streak = 0
                created = created or customer.sumit_id is None
                continue
            if isinstance(error, SumitAuthError) or not isinstance(error, SumitError):
                fatal = fatal or error
                continue
            self.counts.failed += 1
            self.counts.add_reason(f"push: {error}")
            self.errors.append(ErrorRow(phase="push", error=str(error), customer_id=customer.id,
                                        sumit_customer_id=customer.sumit_id, fingerprint=customer.fingerprint))
            if isinstance(error, SumitTransientError):
                self.transient_streak += 1
            if customer.sumit_id is None and _surely_not_carried_out(error):
                self.not_created.append(customer.id)
        if created or len(self.accepted) + len(self.errors) >= self.flush_every:
            self.flush()
        if fatal is not None and raise_fatal:
            raise fatal
        if raise_fatal and self.transient_streak >= self.streak_limit:
            raise SumitUnavailable(
                f"SUMIT failed {self.transient_streak} pushes in a row with transient faults; stopping the push. "
                f"Last: {self.errors[-1].error if self.errors else 'unknown'}"
            )

    def flush(self) -> None:
        if not self.accepted and not self.errors:
            return
        accepted, errors = self.accepted, self.errors
        self.accepted, self.errors = [], []
        self.store.clear_create_sent(self.not_created)
        self.not_created = []
        synced_at = self.now()
        try:
            self.store.mark_pushed(accepted, synced_at=synced_at)
        except IntegrityError:
            # SUMIT answered an id another local customer already holds: write one by one so
            # only the clashing customers fail.
            self.store.rollback()
            for customer, result in accepted:
                try:
                    self.store.mark_pushed([(customer, result)], synced_at=synced_at)
                    self.store.commit()
                except IntegrityError:
                    self.store.rollback()
                    self.counts.pushed -= 1
                    self.counts.failed += 1
                    reason = f"SUMIT answered CustomerID {result.sumit_id}, which another local customer already has"
                    self.counts.add_reason(f"push: {reason}")
                    errors.append(ErrorRow(phase="push", error=reason, customer_id=customer.id, sumit_customer_id=result.sumit_id))
        self.store.resolve_errors("push", [str(c.id) for c, _ in accepted])
        _note_gave_up(self.counts, self.store.record_errors(errors))
        self.store.commit()
