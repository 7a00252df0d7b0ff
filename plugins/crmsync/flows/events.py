"""Apply SUMIT's triggers: read each named customer fresh and merge it as the pull would.

A trigger is a hint, not the data: the customer it names is read again from SUMIT, and that
copy goes through the pull's own page merge (the three-way merge, conflicts, the journal as
direction ``pull``, the error queue for an invalid record). A customer SUMIT no longer has,
or one whose newest trigger is an Archive or a Delete, is flagged missing
(``metadata.crm_missing_since``) as a complete pull flags one it no longer lists; one that is
back is unflagged. Triggers naming another folder are ignored (kept, with the reason).

The inbox is drained in batches, each in one transaction with the triggers it closes: a run
that stops half way has written whole batches and closed exactly their triggers; the rest
stay pending. The mass-change guard holds here too: a batch that would take the run's changes
beyond ``limits`` (crmsync.core.guard: a share of the linked customers changed, blanked or flagged
missing) is rolled back, and it and the rest of the run's triggers are closed as ``held``:
the nightly sync's pull sees the same change and waits for a person's approval. A trigger whose customer could not be read stays pending for the next run, up
to ``max_attempts``; then it is closed as rejected and the customer goes to the error queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from crmsync.core import guard
from crmsync.core.errors import SumitAuthError, SumitError
from crmsync.core.field_rules import FieldRules
from crmsync.core.guard import GuardLimits
from crmsync.core.matching import DEFAULT_KEYS
from crmsync.core.merge import ConflictPolicy
from crmsync.core.pulled import PulledPage
from crmsync.core.summary import SyncCounts
from crmsync.core.triggers import GONE_ACTIONS
from crmsync.db import inbox, plans
from crmsync.db.inbox import APPLIED, HELD, IGNORED, REJECTED, Closing, PendingTrigger
from crmsync.db.store import CustomerStore, ErrorRow
from crmsync.flows.common import PROGRESS_EVERY_SECONDS, utcnow
from crmsync.flows.pages import prepared_pages
from crmsync.flows.pull import merge_page

# Why a trigger's customer was not inserted (crm_inbox.reason, status held).
MATCH_HELD = ("shares a tax id, e-mail or phone with a local customer not linked to SUMIT: left to the next full "
              "pull, which matches it with every candidate (crm_bidirectional_sync or crm_pull_customers)")

BATCH_SIZE = 500  # triggers per transaction


class TriggerClient(Protocol):
    def get_customer(self, sumit_id: str) -> PulledPage | None: ...


@dataclass
class _Read:
    trigger: PendingTrigger
    page: PulledPage | None = None  # None: SUMIT does not have it (or it is archived)
    error: str | None = None  # it could not be read this time


def run_apply_events(
    client: TriggerClient,
    store: CustomerStore,
    *,
    customers_folder: str | None,
    policy: ConflictPolicy = ConflictPolicy.NEWER_WINS,
    rules: FieldRules = FieldRules(),
    max_events: int = 10_000,
    concurrency: int = 4,
    limits: GuardLimits | None = None,
    match_keys: Sequence[str] = DEFAULT_KEYS,
    log: logging.Logger,
    now: Callable[[], datetime] = utcnow,
) -> SyncCounts:
    """Apply up to ``max_events`` pending triggers, oldest first, batch by batch; the counts.

    A customer a trigger names that no local row is linked to, and that shares a value of
    ``match_keys`` with an unlinked local customer, is not inserted: its trigger is held, and the
    next full pull matches it against the whole listing (a trigger sees one customer, never all
    its candidates, so it cannot tell a pair from a guess)."""
    store.journal_as("pull")
    counts, after_id, applied, started = SyncCounts(), 0, 0, time.monotonic()
    last_progress, held = started, []
    existing = plans.linked_count(store) if limits is not None else 0
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="crmsync-trigger") as pool:
        while applied < max_events:
            batch = inbox.pending(store, after_id=after_id, limit=min(BATCH_SIZE, max_events - applied))
            if not batch:
                break
            after_id = batch[-1].id
            if not held:
                batch_counts = _apply_batch(batch, client, store, pool, customers_folder=customers_folder,
                                            policy=policy, rules=rules, match_keys=match_keys, log=log, now=now)
                held = _mass_change(store, existing, limits)
                if held:
                    store.rollback()  # nothing of this batch is written; the batches before it are
                    log.warning("Triggers held back, nothing of them written: together they are a mass change (%s). "
                                "The nightly sync's pull plans the same change and waits for a person's approval.",
                                "; ".join(held))
                else:
                    counts = counts.merge(batch_counts)
            if held:
                inbox.close(store, [Closing(t, HELD, "part of a mass change: " + "; ".join(held)) for t in batch])
                counts.skipped += len(batch)
                counts.add_reason("events: triggers held back as a mass change (left to the nightly sync)")
            store.commit()
            applied += len(batch)
            if time.monotonic() - last_progress >= PROGRESS_EVERY_SECONDS:
                last_progress = time.monotonic()
                log.info("%d triggers dealt with so far (%d customers read, %d changed).", applied,
                         counts.fetched, store.changed_count("pull"))
    counts.changed = store.changed_count("pull")
    counts.considered = counts.fetched
    pruned = inbox.prune(store)
    store.commit()
    if applied == 0:
        log.info("The inbox has no pending trigger: nothing to apply.")
    else:
        log.info("Dealt with %d triggers in %.1f s: %d customers read (%d created, %d updated, %d unchanged), "
                 "%d missing in the CRM, %d skipped; %d customers changed.", applied, time.monotonic() - started,
                 counts.fetched, counts.created, counts.updated, counts.unchanged, counts.vanished, counts.skipped,
                 counts.changed)
    if applied >= max_events:
        log.warning("Stopped at max_events (%d): the triggers after them wait for the next run.", max_events)
    if pruned:
        log.info("Deleted %d triggers done more than %d days ago.", pruned, inbox.KEEP_DAYS)
    return counts


def _mass_change(store: CustomerStore, existing: int, limits: GuardLimits | None) -> list[str]:
    """Why the run's changes so far (this batch's included, not committed) need a person."""
    if limits is None:
        return []
    return guard.pull_reasons(plans.pull_plan(store, existing), limits)


def _apply_batch(batch: list[PendingTrigger], client: TriggerClient, store: CustomerStore, pool: ThreadPoolExecutor, *,
                 customers_folder: str | None, policy: ConflictPolicy, rules: FieldRules, match_keys: Sequence[str],
                 log: logging.Logger, now: Callable[[], datetime]) -> SyncCounts:
    """One batch in the store's open transaction (not committed)."""
    store.start_seen()  # the page merge notes what it saw (nothing here flags the unseen): emptied per batch
    matching = store.start_matching(match_keys) > 0
    at = now()
    closings: list[Closing] = []
    ours = []
    for trigger in batch:
        if customers_folder and trigger.folder and trigger.folder != customers_folder:
            closings.append(Closing(trigger, IGNORED, f"folder {trigger.folder!r} is not the customers folder "
                                                      f"{customers_folder!r}"))
        else:
            ours.append(trigger)
    reads = list(pool.map(lambda t: _read(client, t), ours))

    found = [r for r in reads if r.page is not None and r.trigger.action not in GONE_ACTIONS]
    gone = [r.trigger.entity_id for r in reads if r.error is None and (r.page is None or r.trigger.action in GONE_ACTIONS)]
    failed = [r for r in reads if r.error is not None]

    counts = SyncCounts()
    if found:
        page = PulledPage(number=0, customers=[c for r in found for c in r.page.customers],
                          rejected=[x for r in found for x in r.page.rejected])
        prepared = next(prepared_pages(iter([page]), rules))
        counts, _ = merge_page(prepared, store, policy=policy, full_resync=False, rules=rules, pulled_at=at,
                               matching=matching)
        read_ids = [c.sumit_id for c in prepared.customers]
        inbox.unflag_back(store, read_ids)
        store.resolve_errors("pull", read_ids)  # a record queued as invalid that SUMIT has fixed
    counts.vanished = inbox.flag_missing(store, gone, at=at)
    set_aside = store.set_aside_ids() if matching else set()
    if set_aside:  # not "held for a person" (crm_sync_runs.held): the next full pull decides them
        log.info("%d customers SUMIT's triggers named share a tax id, e-mail or phone with an unlinked local customer: "
                 "not inserted, left to the next full pull's matching.", len(set_aside))
    closings += [Closing(r.trigger, HELD, MATCH_HELD) if r.trigger.entity_id in set_aside else Closing(r.trigger, APPLIED)
                 for r in reads if r.error is None]
    closings += _give_up_or_wait(failed, store, counts, log)
    closed = inbox.close(store, closings)
    if len(closed) < len(closings):
        log.info("%d triggers came again while this batch was read: they stay pending for the next run.",
                 len(closings) - len(closed))
    return counts


def _read(client: TriggerClient, trigger: PendingTrigger) -> _Read:
    try:
        return _Read(trigger, page=client.get_customer(trigger.entity_id))
    except SumitAuthError:
        raise  # wrong credentials: the whole run fails, every trigger stays pending
    except SumitError as exc:
        return _Read(trigger, error=str(exc))


def _give_up_or_wait(failed: list[_Read], store: CustomerStore, counts: SyncCounts, log: logging.Logger) -> list[Closing]:
    """Triggers whose customer could not be read: one more attempt each; those past the cap are
    closed as rejected and their customer queued in crm_sync_errors (phase pull)."""
    if not failed:
        return []
    attempts = inbox.count_failed(store, [(r.trigger, r.error or "") for r in failed])
    counts.skipped += len(failed)
    for r in failed[:3]:
        counts.add_reason(f"pull: could not read CRM customer {r.trigger.entity_id}: {r.error}")
    log.warning("Could not read %d customers from SUMIT (first: %s): their triggers stay in the inbox for the next "
                "run.", len(failed), failed[0].error)
    given_up = [r for r in failed if attempts.get(r.trigger.id, 0) >= store.max_attempts]
    if given_up:
        store.record_errors(ErrorRow(phase="pull", error=f"trigger not applied: {r.error}",
                                     sumit_customer_id=r.trigger.entity_id) for r in given_up)
        counts.gave_up += len(given_up)
    return [Closing(r.trigger, REJECTED, f"gave up after {attempts.get(r.trigger.id)} attempts: {r.error}")
            for r in given_up]

