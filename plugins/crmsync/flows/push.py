"""The push: chosen or changed local customers to SUMIT, several at once, each on its own."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from queue import SimpleQueue

from psycopg import IntegrityError

from crmsync.core.errors import SumitAuthError, SumitError, SumitPermanentError, SumitProtocolError, SumitTransientError
from crmsync.core.field_rules import FieldRules
from crmsync.core.model import LocalCustomer, PushResult
from crmsync.core.summary import SyncCounts
from crmsync.db.store import CustomerStore, ErrorRow
from crmsync.flows.common import PROGRESS_EVERY_SECONDS, CrmClient, note_gave_up, tuned_for_bulk_work, utcnow
from crmsync.flows.lost_creates import find_lost_creates
from crmsync.sumit.budget import BURST


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
    rules: FieldRules = FieldRules(),
    log: logging.Logger,
    now: Callable[[], datetime] = utcnow,
    flush_every: int = 100,
) -> SyncCounts:
    """Send the chosen customers to SUMIT, ``concurrency`` at a time, each on its own.

    The pool has ``BURST`` times as many threads: until SUMIT first answers 429, SumitHook's
    request budget lets them all go at once, then it holds them to at most ``concurrency``
    (crmsync.sumit.budget): a SUMIT that never rate limits gets more pushes at once, one that does
    gets no more than before.

    With ``retry_queue``, customers whose last push failed go first, changed or not;
    ``queue_only`` sends nothing else. A success resolves a customer's queued failure.

    Each request carries what the field ``rules`` send (FieldRules.outgoing: no ``from_crm`` or
    ``none`` field of an existing customer). A refused record is recorded and the rest go on;
    refused credentials, or a run of transient faults longer than the concurrency, stop the
    run. Accepted customers are
    written back (CRM id, fingerprints) in batches; a customer SUMIT just created is written
    back before more are sent, so its new id is never lost.
    """
    counts = SyncCounts()
    ids = sorted(set(customer_ids)) if customer_ids is not None else None
    if store.dry_run and not store.table_exists():
        log.info("Dry run: the sumit_customers table does not exist yet, so there is nothing to push.")
        return counts
    if store.dry_run:
        store.ensure_schema()  # inside the dry run's transaction: a table made by an older crmsync works too
    held = store.held_local_count(ids)
    if held:
        log.warning("%d local customers wait for a person's match decision (crm_sync_matches, the console's Matches "
                    "page): they may be in SUMIT already, so they are not created until a person decides.", held)
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
    workers = BURST * limit
    batch = _PushBatch(store, counts, now=now, flush_every=flush_every, streak_limit=max(3, limit))
    last_progress = time.monotonic()
    with tuned_for_bulk_work(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sumit-push") as pool:
        in_flight = _InFlight()
        try:
            for customer in _candidates(passes, before_chunk=None if store.dry_run else _mark_creates(store)):
                if not _has_name(customer):
                    batch.skip(customer, "customer has no name; SUMIT requires one")
                elif store.dry_run:
                    counts.pushed += 1  # would be pushed
                else:
                    # Only what the field rules send; the same id and fingerprint as read, so the
                    # batch records the row as before and journals exactly the values sent.
                    sent = rules.outgoing(customer)
                    in_flight.add(pool.submit(client.push_customer, sent), sent)
                    while len(in_flight) >= 2 * workers:
                        batch.collect(in_flight.finished())
                if time.monotonic() - last_progress >= PROGRESS_EVERY_SECONDS:
                    log.info("Pushed %d so far (failed %d, skipped %d)", counts.pushed, counts.failed, counts.skipped)
                    last_progress = time.monotonic()
            while in_flight:
                batch.collect(in_flight.finished())
        except BaseException:
            for future in in_flight.customers:
                future.cancel()
            batch.collect([(f, c) for f, c in in_flight.customers.items() if f.done() and not f.cancelled()],
                          raise_fatal=False)
            batch.flush()
            raise
        batch.flush()
    counts.considered = counts.pushed + counts.failed + counts.skipped
    counts.changed = store.changed_count("push")
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


class _InFlight:
    """The pushes sent and not yet collected. Each tells a queue when it finishes, so the main
    thread wakes once for what finished meanwhile (``concurrent.futures.wait`` would hang a waiter
    on every push in flight, 48 by default, and take it off again, each time)."""

    def __init__(self) -> None:
        self.customers: dict[Future, LocalCustomer] = {}
        self._done: SimpleQueue[Future] = SimpleQueue()

    def __len__(self) -> int:
        return len(self.customers)

    def add(self, future: Future, customer: LocalCustomer) -> None:
        self.customers[future] = customer
        future.add_done_callback(self._done.put)

    def finished(self) -> list[tuple[Future, LocalCustomer]]:
        """At least one finished push (waiting for one), with every other one finished by now."""
        done = [self._done.get()]
        while not self._done.empty():
            done.append(self._done.get_nowait())
        return [(future, self.customers.pop(future)) for future in done]


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
        # Pushes that failed with a transient fault after all their tries, since the last success. A
        # 429 the hook's request budget absorbed (paused, slowed down, retried) never gets here:
        # a push that is merely rate limited succeeds late and resets the streak.
        self.transient_streak = 0

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
        note_gave_up(self.counts, self.store.record_errors(errors))
        self.store.commit()
