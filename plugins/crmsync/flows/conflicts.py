"""Resolve recorded conflicts: the side a person keeps, written into the customer rows.

A pull met each conflict (a customer changed on both sides since the last sync), let its policy
pick a winner and recorded both versions in crm_sync_conflicts. Keeping the winner writes
nothing; keeping the other side writes its values into the row, for rows that still hold the
winner's (a row changed since is left alone, its conflict stays open, and it is named). What
each side is, and which conflicts decide, is :mod:`crmsync.core.conflict_plan`.

Everything is one transaction, journaled as direction ``resolve`` by the table's triggers; the
conflicts it settles are marked (``resolution``, ``resolved_at``, ``resolved_by``) in the same
transaction. A request that names no open conflict is refused before anything is written.
Nothing here sends anything to SUMIT: the rewritten customers now differ from what was last
synced, and the DAG's push (or the next sync) sends them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from crmsync.core import conflict_plan
from crmsync.core.conflict_plan import (ALREADY_RESOLVED, CHANGED_SINCE, DELETED, HOLDS_CHOICE, KEPT, REWRITTEN, SAME,
                                   SETTLED_WITH, SIDES, SUPERSEDED, UNKNOWN, Decision)
from crmsync.core.errors import ConfigurationError
from crmsync.core.field_rules import FieldRules
from crmsync.core.summary import SyncCounts
from crmsync.db import conflict_store
from crmsync.db.store import CustomerStore

LOGGED_IDS = 50  # conflicts a log line names at most
REASON_IDS = 10  # conflicts the run summary names at most

_OPEN_CONFLICTS = ("SELECT id, customer_id, winner, policy, created_at FROM crm_sync_conflicts "
                   "WHERE resolution IS NULL ORDER BY id DESC LIMIT 20")


class ResolveRefused(ConfigurationError):
    """Nothing of the request can be done (no named conflict is open, or a bad argument).
    Nothing was written; retrying cannot help."""


def run_resolve(store: CustomerStore, *, conflict_ids: Sequence[int], keep: str, rules: FieldRules = FieldRules(),
                not_carried: Collection[str] = frozenset(), log: logging.Logger) -> SyncCounts:
    """Keep side ``keep`` ('crm' or 'local') of the named conflicts, in one transaction (not
    committed in a dry run).

    Counts: conflicts = conflicts marked resolved (older ones superseded included), updated =
    customers rewritten, unchanged = conflicts resolved with nothing to write, skipped = named
    conflicts not resolved (changed since, deleted, superseded, unknown, already resolved),
    changed = journal rows this run wrote, considered = conflicts named. Raises
    :class:`ResolveRefused`, before any write, when no named conflict is open and decides.
    """
    ids = sorted({int(i) for i in conflict_ids})
    if not ids:
        raise ResolveRefused("conflict_ids is empty: name the conflicts to resolve (crm_sync_conflicts.id). "
                             "Nothing was written.")
    if keep not in SIDES:
        raise ResolveRefused(f"keep is {keep!r}: it must be 'crm' or 'local'. Nothing was written.")
    if store.dry_run:
        store.ensure_schema()  # inside the dry run's transaction: a database crmsync never prepared works too
    found = conflict_store.read(store, ids)
    decisions = conflict_plan.plan(ids, found, keep=keep, rules=rules, not_carried=not_carried)
    why = conflict_plan.refusal(decisions)
    if why is not None:
        store.rollback()  # only read; nothing stays open or locked
        raise ResolveRefused(f"None of the conflicts {_ids(ids, REASON_IDS)} can be resolved: {why}. Nothing was "
                             f"written. Open conflicts: {_OPEN_CONFLICTS}")
    log.info("Resolving %s (keep %s): %s found, %s open.", _conflicts(len(ids)), keep, len(found),
             sum(1 for row in found if row.resolution is None))

    store.journal_as("resolve")
    planned = [d for d in decisions if d.outcome == conflict_plan.REWRITE]
    decisions = conflict_plan.after_rewrite(decisions, conflict_store.rewrite(store, planned))
    marked = conflict_store.mark_resolved(store, conflict_plan.leads_to_resolve(decisions), keep=keep)
    counts = _counts(decisions, marked)
    counts.considered = len(ids)
    counts.changed = store.changed_count("resolve")
    _log_outcome(log, decisions, marked, keep=keep, dry_run=store.dry_run)
    store.commit()
    return counts


def _by_outcome(decisions: Sequence[Decision]) -> dict[str, list[Decision]]:
    grouped: dict[str, list[Decision]] = {}
    for d in decisions:
        grouped.setdefault(d.outcome, []).append(d)
    return grouped


def _superseded(decisions: Sequence[Decision], marked: dict[int, int]) -> list[int]:
    """Conflicts marked because a newer one of the same customer decided them."""
    return sorted(conflict for conflict, lead in marked.items() if conflict != lead)


def _counts(decisions: Sequence[Decision], marked: dict[int, int]) -> SyncCounts:
    grouped = _by_outcome(decisions)
    left = grouped.get(CHANGED_SINCE, []) + grouped.get(DELETED, [])
    refused = grouped.get(SUPERSEDED, []) + grouped.get(UNKNOWN, []) + grouped.get(ALREADY_RESOLVED, [])
    unsettled = [d for d in grouped.get(SETTLED_WITH, []) if d.conflict_id not in marked]
    counts = SyncCounts(
        conflicts=len(marked),
        updated=len(grouped.get(REWRITTEN, [])),
        unchanged=sum(len(grouped.get(o, [])) for o in (KEPT, SAME, HOLDS_CHOICE)),
        skipped=len(left) + len(refused) + len(unsettled),
    )
    if left:
        counts.add_reason(f"resolve: {_customers(len(left))} changed or deleted since their conflict, left alone "
                          f"(the conflicts stay open): {_pairs(sorted(left, key=_key), REASON_IDS)}")
    if grouped.get(UNKNOWN):
        counts.add_reason(f"resolve: no conflict has id {_ids([d.conflict_id for d in grouped[UNKNOWN]], REASON_IDS)}")
    if grouped.get(ALREADY_RESOLVED):
        counts.add_reason("resolve: already resolved, left as they were: "
                          + _list([f"{d.conflict_id} ({d.note})" for d in grouped[ALREADY_RESOLVED]], REASON_IDS))
    if grouped.get(SUPERSEDED):
        superseded = [f"{d.conflict_id} (newer: {d.lead})" for d in grouped[SUPERSEDED]]
        counts.add_reason("resolve: superseded by a newer open conflict of the same customer, not resolved (resolve "
                          f"the newer one): {_list(superseded, REASON_IDS)}")
    older = _superseded(decisions, marked)
    if older:
        counts.add_reason(f"resolve: also resolved {_conflicts(len(older))} older than the one decided for the same "
                          f"customer (superseded): ids {_ids(older, REASON_IDS)}")
    return counts


def _key(d: Decision) -> int:
    return d.conflict_id


def _log_outcome(log: logging.Logger, decisions: Sequence[Decision], marked: dict[int, int], *, keep: str,
                 dry_run: bool) -> None:
    grouped = _by_outcome(decisions)
    rewritten = grouped.get(REWRITTEN, [])
    would = "Dry run, nothing written: would rewrite" if dry_run else "Rewrote"
    log.info("%s %s with the %s values%s", would, _customers(len(rewritten)), "CRM's" if keep == "crm" else "local",
             f": {_pairs(rewritten, LOGGED_IDS)}" if rewritten else ".")
    lines = (
        (KEPT, f"Kept the winner ({keep}), the row holds it already: resolved, nothing written"),
        (SAME, "Both sides hold the same values wherever this side may write (field rules): resolved, nothing written"),
        (HOLDS_CHOICE, "The row holds the chosen values already: resolved, nothing written"),
        (CHANGED_SINCE, "Changed since the conflict (the row no longer holds the winner's values), left alone, "
                        "still open"),
        (DELETED, "The customer's row is gone, left alone, still open"),
        (SUPERSEDED, "Superseded by a newer open conflict of the same customer (resolve that one), not resolved"),
        (ALREADY_RESOLVED, "Already resolved, left as they were"),
        (UNKNOWN, "No such conflict"),
    )
    for outcome, text in lines:
        found = grouped.get(outcome, [])
        if found:
            say = log.warning if outcome in (CHANGED_SINCE, DELETED, SUPERSEDED, UNKNOWN) else log.info
            say("%s: %d: %s", text, len(found), _pairs(found, LOGGED_IDS))
    older = _superseded(decisions, marked)
    if older:
        log.info("Also resolved %s older than the one decided for the same customer (superseded by it): ids %s",
                 _conflicts(len(older)), _ids(older, LOGGED_IDS))
    if rewritten:
        log.info("push_resolved sends the rewritten customers to SUMIT%s.",
                 " in a real run" if dry_run else "; if it cannot, the next crm_bidirectional_sync does")


def _pairs(decisions: Sequence[Decision], limit: int) -> str:
    """Conflicts with their customers: ``conflict 12 (customer 4)``."""
    return _list([f"conflict {d.conflict_id}" + (f" (customer {d.customer_id})" if d.customer_id is not None else "")
                  for d in decisions], limit)


def _ids(ids: Sequence[int], limit: int) -> str:
    return _list([str(i) for i in ids], limit)


def _list(items: Sequence[str], limit: int) -> str:
    return ", ".join(items[:limit]) + (f" ... ({len(items) - limit} more)" if len(items) > limit else "")


def _customers(n: int) -> str:
    return f"{n} customer" if n == 1 else f"{n} customers"


def _conflicts(n: int) -> str:
    return f"{n} conflict" if n == 1 else f"{n} conflicts"
