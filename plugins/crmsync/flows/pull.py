"""The pull: every CRM customer into the table, a page at a time, with the three-way merge."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from crmsync.core import guard
from crmsync.core.errors import ConfigurationError, CrmSyncError
from crmsync.core.field_rules import FieldRules
from crmsync.core.guard import GuardLimits, PullPlan
from crmsync.core.matching import DEFAULT_KEYS
from crmsync.core.merge import ConflictPolicy, Outcome, plan_pull
from crmsync.core.pulled import PulledPage
from crmsync.core.summary import SyncCounts
from crmsync.db import plans
from crmsync.db.store import CustomerStore
from crmsync.flows.common import CrmClient, note_gave_up, tuned_for_bulk_work, utcnow
from crmsync.flows.lost_creates import link_lost_creates
from crmsync.flows.matching import link_matches
from crmsync.flows.memory import release_freed_memory
from crmsync.flows.pages import (
    PreparedPage,
    Skipping,
    combined,
    prepare,
    prepared_pages,
    prepared_skipping_known,
    record_salt,
)
from crmsync.flows.read_ahead import read_ahead

BATCH_ROWS = 250  # a re-pull merges the changed records of several pages once this many wait (1,000 peaked 5 MB higher)


def run_pull(
    client: CrmClient,
    store: CustomerStore,
    *,
    policy: ConflictPolicy = ConflictPolicy.NEWER_WINS,
    full_resync: bool = False,
    rules: FieldRules = FieldRules(),
    limits: GuardLimits | None = None,
    match_keys: Sequence[str] = DEFAULT_KEYS,
    log: logging.Logger,
    now: Callable[[], datetime] = utcnow,
) -> PullResult:
    """Bring every CRM customer into the table, a page at a time, in one transaction.

    A page is one statement that inserts the new customers and reads the state of the changed
    ones, and at most three writes more, whatever its size; the page after is prepared
    meanwhile, and the client reads the pages after that ahead (SumitHook: ``read_concurrency``
    listing requests at once), handing them over in listing order. Every change is journaled (crm_sync_changes) by the table's triggers.

    Only a complete pull (every page read) then flags linked customers the CRM no longer
    lists (``metadata.crm_missing_since``), unflags those that are back, and resolves queued
    rejections the CRM has fixed, and matches the CRM customers no local row is linked to with
    the unlinked local customers by ``match_keys`` (crmsync.core.matching: one-to-one pairs are
    linked, ambiguous records wait for a person in crm_sync_matches). Before committing, the pull reads its own plan from the
    journal: with ``limits`` (the mass-change guard, crmsync.core.guard) a plan beyond them is rolled
    back, and kept with the listing it came from for :func:`apply_held_pull` once a person
    approves it. A pull that stops half way writes nothing; running again starts over.
    """
    with tuned_for_bulk_work():
        return _pull(client, store, policy=policy, full_resync=full_resync, rules=rules, limits=limits,
                     match_keys=tuple(match_keys), log=log, now=now)


def _pull(client: CrmClient, store: CustomerStore, *, policy: ConflictPolicy, full_resync: bool, rules: FieldRules,
          limits: GuardLimits | None, match_keys: tuple[str, ...], log: logging.Logger,
          now: Callable[[], datetime]) -> PullResult:
    pulled_at = now()
    if store.dry_run:
        store.ensure_schema()  # inside the dry run's transaction: an empty database works too
    store.journal_as("pull")
    # The existing customers the guard measures against: those linked, and those matching may link.
    linked = plans.linked_count(store)
    existing = linked + store.count_matchable(match_keys)
    # Only a table with enough of them can meet the guard: only then is the listing kept aside.
    guarded = limits is not None and existing >= max(1, limits.min_mass_change)
    with contextlib.ExitStack() as stack:
        spool = stack.enter_context(plans.ListingSpool()) if guarded and not store.dry_run else None
        salt = record_salt(client, rules)
        # A re-pull maps only the records SUMIT changed (their hash differs from the one stored);
        # a first pull, a full resync (and a pull that looks for lost creates) map every record.
        skipping = Skipping() if salt is not None and linked and not full_resync else None
        pages = read_ahead(prepared_pages(client.iter_customer_pages(), rules, spool, salt=salt, skipping=skipping))
        counts = _merge_listing(pages, store, policy=policy, full_resync=full_resync, rules=rules,
                                pulled_at=pulled_at, linked_before=linked, match_keys=match_keys, log=log,
                                spool=spool, skipping=skipping)
        counts.changed = store.changed_count("pull") + store.changed_count("link")
        plan = plans.pull_plan(store, existing) if guarded else None
        reasons = guard.pull_reasons(plan, limits) if plan is not None and limits is not None else []
        if reasons and store.dry_run:
            log.warning("A real run would wait for approval before writing anything: %s.", "; ".join(reasons))
        elif reasons:
            store.rollback()  # nothing of this pull is written
            plans.hold(store, "pull", plan=plan.to_dict(), reasons=reasons, listing=spool, settings={
                "policy": policy.value, "full_resync": full_resync, "pulled_at": pulled_at.isoformat(),
                "match_keys": list(match_keys)})
            log.warning("Nothing written: this pull waits for approval because %s. The plan: %s",
                        "; ".join(reasons), json.dumps(plan.totals()))
            return PullResult(counts, plan, reasons, held=True)
    store.commit()
    _log_outcome(counts, log)
    return PullResult(counts, plan, reasons, held=False)


def apply_held_pull(store: CustomerStore, *, rules: FieldRules = FieldRules(), log: logging.Logger) -> PullResult:
    """Apply the plan this run's pull held for approval, from the listing it read.

    The merge is computed again from that listing, in one transaction, and committed only if
    it is the plan that was approved (the same counts per field): if the table changed in
    between, nothing is written and the error says what differs.
    """
    held = plans.held(store, "pull")
    if held is None or held.status != plans.AWAITING:
        raise ConfigurationError(
            f"Run {store.run.dag_run_id} of {store.run.dag_id} has no pull plan waiting for approval"
            + (f" (its plan is {held.status})." if held else ".") + " Nothing was written."
        )
    approved = PullPlan.from_dict(held.plan)
    settings = held.settings
    with tuned_for_bulk_work():
        store.journal_as("pull")
        match_keys = tuple(settings.get("match_keys", ()))
        linked = plans.linked_count(store)
        existing = linked + store.count_matchable(match_keys)
        counts = _merge_listing(_staged(store), store, policy=ConflictPolicy.parse(settings["policy"]),
                                full_resync=bool(settings["full_resync"]), rules=rules,
                                pulled_at=datetime.fromisoformat(settings["pulled_at"]), linked_before=linked,
                                match_keys=match_keys, log=log)
        counts.changed = store.changed_count("pull") + store.changed_count("link")
        plan = plans.pull_plan(store, existing)
    if plan.totals() != approved.totals():
        store.rollback()
        raise CrmSyncError(
            "The customers table changed since this plan was computed, so it is not the plan that was approved: "
            f"approved {json.dumps(approved.totals())}, now {json.dumps(plan.totals())}. Nothing was written; "
            "run the pull again to compute a new plan."
        )
    plans.close(store, "pull", plans.APPLIED)
    store.commit()
    log.info("Applied the approved plan: %s", json.dumps(plan.totals()))
    _log_outcome(counts, log)
    return PullResult(counts, plan, held.reasons, held=False)


@dataclass
class PullResult:
    counts: SyncCounts
    plan: PullPlan | None  # what it did to the existing customers (None: the table was too small to guard)
    reasons: list[str]  # why it needs approval; empty when it does not
    held: bool  # nothing was written: the plan waits for approval


def _merge_listing(pages: Iterator["PreparedPage | PulledPage"], store: CustomerStore, *, policy: ConflictPolicy,
                   full_resync: bool, rules: FieldRules, pulled_at: datetime, linked_before: int,
                   match_keys: tuple[str, ...], log: logging.Logger,
                   spool: plans.ListingSpool | None = None, skipping: Skipping | None = None) -> SyncCounts:
    """Merge every page into the table, flag the vanished, resolve fixed rejects; one transaction, not committed.

    Only a customer linked before the pull began can vanish (one the pull links is on its
    pages), so with ``linked_before`` 0 (a first pull) no CRM id is noted as seen and nothing
    is looked for: 1 ms of each page's statement and 0.1-0.2 s at the end per 100,000 customers.
    Likewise with no unlinked local customer that has a value of ``match_keys``, nothing is set
    aside for matching.

    A :class:`PulledPage` among ``pages`` (see :class:`Skipping`) is prepared here, mapping only
    the records whose hash the table does not hold."""
    counts = SyncCounts()
    not_mapped = 0
    vanishing = linked_before > 0
    store.start_seen()
    matching = store.start_matching(match_keys) > 0
    lost_creates = store.unconfirmed_creates()  # created by a run that died before storing the answer
    if lost_creates and skipping is not None:
        skipping.on = False  # looking for them takes every customer of every page
    still_rejected: list[str] = []
    clock = time.perf_counter
    waited_from = clock()
    batch: list[PreparedPage] = []  # re-pulled pages' changed records, merged together
    batch_ids: set[str] = set()

    def merge(prepared: PreparedPage) -> None:
        nonlocal counts, still_rejected
        if lost_creates:
            link_lost_creates(prepared.customers, lost_creates, store, log)
        page_counts, rejected_keys = merge_page(prepared, store, policy=policy, full_resync=full_resync,
                                                 rules=rules, pulled_at=pulled_at, note_seen=vanishing,
                                                 matching=matching, known=vanishing)
        still_rejected += rejected_keys
        counts = counts.merge(page_counts)
        if skipping is not None and not lost_creates and not prepared.unchanged_seen:
            skipping.judge(page_counts.unchanged, page_counts.fetched)
        if prepared.unchanged_seen:  # a batch of re-pulled pages: each logged its own line already
            log.info("Merged the changed and new records of the pages up to page %d: created %d, updated %d, "
                     "skipped %d, conflicts %d; %d fetched so far", prepared.number, page_counts.created,
                     page_counts.updated, page_counts.skipped, page_counts.conflicts, counts.fetched)
        else:
            log.info("Page %d: %d records (created %d, updated %d, unchanged %d, skipped %d, conflicts %d); "
                     "%d fetched so far", prepared.number, page_counts.fetched, page_counts.created,
                     page_counts.updated, page_counts.unchanged, page_counts.skipped, page_counts.conflicts,
                     counts.fetched)

    def flush() -> None:
        if batch:
            merge(combined(batch))
            batch.clear()
            batch_ids.clear()

    for item in pages:
        merge_from = clock()
        store.add_phase_time("read", merge_from - waited_from)  # SUMIT's page, read ahead and prepared
        if isinstance(item, PulledPage) and not lost_creates:
            ids = item.ids
            prepared = prepared_skipping_known(item, rules, store, note_seen=vanishing)
            if spool is not None:
                spool.add(prepared.number, prepared.fetched, prepared.rows, prepared.rejected, prepared.unchanged_ids)
            if prepared.unchanged_seen:  # some records were the same as at the last pull
                changed_ids = set(ids).difference(prepared.unchanged_ids)
                same, prepared.unchanged_ids = prepared.same, ()  # noted as seen, and spooled: not kept
                not_mapped += same
                if skipping is not None:
                    skipping.judge(same, prepared.fetched)
                log.info("Page %d: %d records, %d the same as at the last pull (not mapped again), %d changed or "
                         "new", prepared.number, prepared.fetched, same, prepared.fetched - same)
                if not batch_ids.isdisjoint(changed_ids):
                    flush()  # a CRM id changed twice (the listing shifted): merged apart, as on separate pages
                batch.append(prepared)
                batch_ids.update(changed_ids)
                if len(batch_ids) >= BATCH_ROWS:
                    flush()
            else:
                flush()
                merge(prepared)
        else:
            flush()
            merge(item if isinstance(item, PreparedPage) else prepare(item, rules))
        del item
        release_freed_memory()  # what reading and merging the page freed, in every thread's arena
        waited_from = clock()
        store.add_phase_time("merge", waited_from - merge_from)
    flush()
    if not_mapped:
        log.info("%d of the %d records read were the same as at the last pull and were not mapped again.",
                 not_mapped, counts.fetched)
    if matching:
        matched = link_matches(store, keys=match_keys, policy=policy, rules=rules, pulled_at=pulled_at, log=log)
        counts.linked, counts.held, counts.conflicts = matched.linked, matched.held, counts.conflicts + matched.conflicts
        counts.created += matched.created
    else:
        store.clear_waiting_matches()  # no unlinked local customer with a key: nothing can be ambiguous
    store.clear_create_sent(lost_creates)  # not in a complete listing: never created, send again
    counts.vanished, back = store.flag_vanished(pulled_at=pulled_at) if vanishing else (0, 0)
    store.resolve_pull_errors_after_complete_pull(still_rejected)
    store.compact_customer_counts()  # the rows this pull's pages (and writers since the last pull) added
    packed = store.pack_search_rows_if_due()
    if packed is not None:
        log.info("The console's search rows were packed again: %d customers.", packed)
    if counts.vanished or back:
        log.warning("%d customers are no longer listed by the CRM and are flagged crm_missing_since; "
                    "%d flagged earlier are listed again.", counts.vanished, back)
    counts.considered = counts.fetched
    return counts


def _log_outcome(counts: SyncCounts, log: logging.Logger) -> None:
    log.info("%d customers changed (their rows in crm_sync_changes).", counts.changed)


def _staged(store: CustomerStore) -> Iterator[PreparedPage]:
    """A held pull's pages, as it prepared them."""
    for number, fetched, encoded, rejected, unchanged in plans.listing_pages(store):
        yield PreparedPage(number, fetched, rejected, encoded.encode("utf-8"), unchanged_ids=unchanged)


def merge_page(
    prepared: PreparedPage, store: CustomerStore, *, policy: ConflictPolicy, full_resync: bool, rules: FieldRules,
    pulled_at: datetime, note_seen: bool = True, matching: bool = False, known: bool = False,
) -> tuple[SyncCounts, list[str]]:
    """Merge one prepared page into the table (not committed): its counts and the keys of the
    records it rejected. Also what crm_apply_crm_events merges the customers triggers name with.
    With ``note_seen`` false its CRM ids are not noted as seen by the pull (no vanished check follows);
    with ``matching``, new customers sharing a key value with an unlinked local one are set aside
    for :func:`crmsync.flows.matching.link_matches` instead of inserted; with ``known`` (linked
    customers may be on the page: a re-pull), the record hashes of unchanged customers are stored."""
    rejected = prepared.rejected
    counts = SyncCounts(fetched=prepared.fetched)
    if prepared.unchanged_seen and not rejected and prepared.unique == prepared.same:
        counts.unchanged = prepared.unique  # the same records as at the last pull, already noted as seen
        return counts, []
    for r in rejected:
        counts.add_reason(f"pull: {r.reason}")
    counts.skipped = len(rejected)

    inserted, set_aside, states = store.pull_page(
        prepared.rows, also_seen=[r.sumit_id for r in rejected if r.sumit_id]
        + ([] if prepared.unchanged_seen else list(prepared.unchanged_ids)),
        synced_at=pulled_at, full_resync=full_resync, note_seen=note_seen, matching=matching, known=known)
    # A customer new to the table was inserted whole; one whose CRM copy did not change needs
    # nothing (plan_pull's rules); the store returned the states of the rest.
    decisions = [
        plan_pull(c, states[c.sumit_id], policy=policy, pulled_at=pulled_at, full_resync=full_resync, rules=rules)
        for c in (prepared.customers_named(states) if states else ())
    ]
    updated_ids = store.apply_pull(decisions, synced_at=pulled_at, policy=policy.value)
    rejected_keys, gave_up = store.record_rejected(rejected)
    note_gave_up(counts, gave_up)

    counts.created = inserted
    counts.updated = sum(1 for d in decisions if d.outcome is Outcome.UPDATED and d.local_id in updated_ids)
    counts.unchanged = prepared.unique - counts.created - counts.updated - set_aside
    counts.conflicts = sum(1 for d in decisions if d.conflict is not None)
    return counts, rejected_keys
