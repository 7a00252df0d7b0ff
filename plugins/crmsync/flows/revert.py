"""Undo a run: the local values its pull changed, back to what they were, for customers nobody
changed since.

The change journal holds, per customer a run changed, the changed fields before and after
(crm_sync_changes), and the customers it created (crm_sync_created). A revert restores ``before`` where a customer still holds ``after`` and no
later run's pull or revert touched it; the others are left alone and named. It never deletes
the customers the run created, and never restores the link to the CRM (sumit_customer_id):
that is identity, not data, and unlinking would make the next push create a duplicate.

The restore is one statement in one transaction, journaled as direction ``revert`` by the
table's triggers, so a revert can itself be undone, and a second revert of the same run finds
every customer already restored and changes nothing. A run it cannot undo is refused before
anything is written. Nothing here sends anything to SUMIT: the restored customers' values now
differ from what was last synced, so the next sync pushes them (or the revert DAG's own push).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from crmsync.core.errors import ConfigurationError
from crmsync.core.summary import SyncCounts
from crmsync.db import revert_store
from crmsync.db.revert_store import ALREADY_RESTORED, CHANGED_SINCE, CREATED, DELETED, LINK_ONLY, RESTORED, RunMatch
from crmsync.db.store import CustomerStore

LOGGED_IDS = 50  # ids a log line names at most
REASON_IDS = 10  # ids the run summary names at most

_FIND_RUNS = ("SELECT dag_id, dag_run_id, operation, changed, finished_at FROM crm_sync_runs "
              "ORDER BY id DESC LIMIT 20")


class RevertRefused(ConfigurationError):
    """The run cannot be undone as asked (unknown, ambiguous, nothing to restore). Nothing was
    written; retrying cannot help."""


def run_revert(store: CustomerStore, *, dag_run_id: str, log: logging.Logger) -> SyncCounts:
    """Undo run ``dag_run_id``'s local changes (its journal rows of direction pull or revert) on
    the customers nobody changed since, in one transaction (not committed in a dry run).

    Counts: updated = restored, unchanged = already restored, skipped = changed since (or
    deleted since), changed = journal rows this revert wrote, considered = customers examined.
    Raises :class:`RevertRefused`, before any write, for an unknown ``dag_run_id``, one that
    names runs of several DAGs, and a run that changed nothing a revert can restore.
    """
    target = (dag_run_id or "").strip()
    if not target:
        raise RevertRefused("dag_run_id is empty: name the run to undo (crm_sync_runs.dag_run_id). "
                            "Nothing was written.")
    if store.dry_run:
        store.ensure_schema()  # inside the dry run's transaction: a database crmsync never prepared works too
    run = _the_run(store, target)
    log.info("Reverting run %r of %s (%s): its change journal holds %s it changed and %s it created.", target,
             run.dag_id, run.operation or "no crm_sync_runs row", _customers(run.revertible), _customers(run.created))

    store.journal_as("revert")
    result = revert_store.restore(store, dag_id=run.dag_id, dag_run_id=target)
    by_outcome = _group(result.outcomes)
    if not (by_outcome[RESTORED] or by_outcome[ALREADY_RESTORED] or by_outcome[CHANGED_SINCE]
            or by_outcome[DELETED]):
        store.rollback()  # the statement changed nothing; nothing stays open
        raise RevertRefused(
            f"Run {target!r} of {run.dag_id} changed nothing a revert can restore: it only created customers "
            f"({len(by_outcome[CREATED])}) or linked them to the CRM ({len(by_outcome[LINK_ONLY])}), and a revert "
            "keeps both (crmsync never deletes, and the CRM link is identity). Nothing was written."
        )
    counts = _counts(by_outcome, target)
    counts.changed = store.changed_count("revert")
    to_push = [i for i in by_outcome[RESTORED] if i in result.changes_columns]
    _log_outcome(log, by_outcome, target, to_push=to_push, dry_run=store.dry_run)
    store.commit()
    return counts


def _the_run(store: CustomerStore, target: str) -> RunMatch:
    matches = revert_store.find_run(store, target)
    if not matches:
        raise RevertRefused(
            f"No run has dag_run_id {target!r}: crm_sync_runs has no row for it and the change journal "
            f"(crm_sync_changes, crm_sync_created) none either. Nothing was written. Recent runs: {_FIND_RUNS}"
        )
    if len(matches) > 1:
        raise RevertRefused(
            f"dag_run_id {target!r} names runs of several DAGs: {', '.join(m.dag_id for m in matches)}; a revert "
            "undoes one run and cannot tell which is meant. Nothing was written."
        )
    run = matches[0]
    if not run.revertible:
        raise RevertRefused(f"Run {target!r} of {run.dag_id} changed nothing a revert can restore: "
                            f"{_why_nothing(run)}. Nothing was written.")
    return run


def _why_nothing(run: RunMatch) -> str:
    if run.created:
        return f"it only created customers ({run.created}), and a revert keeps them (crmsync never deletes)"
    if run.journaled:
        return (f"its {run.journaled} change journal rows are all pushes (values sent to SUMIT, whose earlier "
                "values crmsync does not keep); a revert restores local values only")
    if run.operation == "push":
        return "it was a push, which changes SUMIT, not the local table"
    return "its change journal is empty (the run changed no customer, or ran before crmsync kept a journal)"


def _group(outcomes: dict[int, str]) -> dict[str, list[int]]:
    by_outcome: dict[str, list[int]] = {name: [] for name in revert_store.OUTCOMES}
    for customer_id, outcome in sorted(outcomes.items()):
        by_outcome[outcome].append(customer_id)
    return by_outcome


def _ids(ids: Sequence[int], limit: int) -> str:
    return ", ".join(map(str, ids[:limit])) + (f" ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def _customers(n: int) -> str:
    return f"{n} customer" if n == 1 else f"{n} customers"


def _counts(by_outcome: dict[str, list[int]], target: str) -> SyncCounts:
    counts = SyncCounts(
        updated=len(by_outcome[RESTORED]),
        unchanged=len(by_outcome[ALREADY_RESTORED]),
        skipped=len(by_outcome[CHANGED_SINCE]) + len(by_outcome[DELETED]),
        considered=sum(len(ids) for ids in by_outcome.values()),
    )
    changed_since, deleted = by_outcome[CHANGED_SINCE], by_outcome[DELETED]
    kept = by_outcome[CREATED] + by_outcome[LINK_ONLY]
    if changed_since:
        counts.add_reason(f"revert: {_customers(len(changed_since))} changed since run {target}, left alone: "
                          f"ids {_ids(changed_since, REASON_IDS)}")
    if deleted:
        counts.add_reason(f"revert: {_customers(len(deleted))} the run changed deleted since, nothing to restore: "
                          f"ids {_ids(deleted, REASON_IDS)}")
    if kept:
        counts.add_reason(f"revert: kept {_customers(len(kept))} the run created or linked to the CRM (crmsync never "
                          f"deletes or unlinks): ids {_ids(sorted(kept), REASON_IDS)}")
    return counts


def _log_outcome(log: logging.Logger, by_outcome: dict[str, list[int]], target: str, *, to_push: Sequence[int],
                 dry_run: bool) -> None:
    would = "Dry run, nothing written: would restore" if dry_run else "Restored"
    restored = by_outcome[RESTORED]
    log.info("%s %s to their values before run %r%s", would, _customers(len(restored)), target,
             f": ids {_ids(restored, LOGGED_IDS)}" if restored else ".")
    lines = (
        (ALREADY_RESTORED, "Already restored (their values equal those before the run), nothing to do"),
        (CHANGED_SINCE, "Changed since the run (a local edit, or a later pull or revert), left alone"),
        (DELETED, "Deleted since the run, nothing to restore"),
        (CREATED, "Created by the run, kept (crmsync never deletes)"),
        (LINK_ONLY, "Only linked to the CRM by the run, kept (the link is identity, not data)"),
    )
    for outcome, text in lines:
        ids = by_outcome[outcome]
        if ids:
            say = log.warning if outcome == CHANGED_SINCE else log.info  # a person may want to look at those
            say("%s: %d: ids %s", text, len(ids), _ids(ids, LOGGED_IDS))
    if restored:
        # A restored column differs from what was last synced, so the next sync pushes it; custom
        # fields and the vanished flag are never sent to SUMIT.
        log.info("%d of them %s columns restored%s: the next crm_bidirectional_sync pushes those, or this run's "
                 "push_restored with push_reverted. Restored custom fields and vanished flags stay local.",
                 len(to_push), "would have" if dry_run else "had",
                 f" (ids {_ids(to_push, LOGGED_IDS)})" if to_push else "")
