"""The database side of resolving conflicts: its reads and writes, SQL from include/sql/conflict_*.sql.

Functions that take a :class:`~crmsync.db.store.CustomerStore` (and so its connection, run and
dry-run mode), kept apart from the store so the store stays about syncing, as
:mod:`crmsync.db.revert_store` is for the revert. Nothing is committed here. Knows nothing of Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from crmsync.core.conflict_plan import ConflictRow, Decision
from crmsync.db.store import CustomerStore


def read(store: CustomerStore, conflict_ids: Sequence[int]) -> list[ConflictRow]:
    """The named conflicts that exist, locked until the transaction ends, with their customer's
    newest open conflict and row as it is now (include/sql/conflict_read.sql)."""
    rows = store.fetch("conflict_read", {"ids": list(conflict_ids)})
    return [ConflictRow(id=r[0], customer_id=r[1], sumit_customer_id=r[2], winner=r[3], local_values=r[4] or {},
                        crm_values=r[5] or {}, resolution=r[6], resolved_by=r[7], newest_open_id=r[8], current=r[9])
            for r in rows]


def rewrite(store: CustomerStore, decisions: Iterable[Decision]) -> set[int]:
    """Write the chosen values of these planned rewrites (one statement), each only into a row
    that still holds the winner's values; returns the customer ids written. Journaled as the
    store's run only if the session journals (:meth:`CustomerStore.journal_as`)."""
    rows = [{"id": d.customer_id, "sumit_customer_id": d.sumit_customer_id, "expected": d.expected,
             "chosen": d.chosen} for d in decisions]
    if not rows:
        return set()
    written = store.fetch("conflict_rewrite", {"rows": json.dumps(rows, ensure_ascii=False)})
    return {row[0] for row in written}


def mark_resolved(store: CustomerStore, leads: Iterable[Decision], *, keep: str) -> dict[int, int]:
    """Mark these deciding conflicts resolved as ``keep`` by the store's run, with their
    customers' older open conflicts; returns every conflict marked -> the one that decided it."""
    leads = list(leads)
    if not leads:
        return {}
    rows = store.fetch("conflict_mark_resolved", {
        "ids": [d.conflict_id for d in leads], "customer_ids": [d.customer_id for d in leads],
        "keep": keep, "dag_run_id": store.run.dag_run_id,
    })
    return {row[0]: row[1] for row in rows}


def rewritten_to_push(store: CustomerStore) -> list[int]:
    """The customers the store's (resolve) run rewrote whose rewrite changed a column SUMIT
    holds, read from the run's own journal rows (direction resolve), in id order."""
    rows = store.fetch("conflict_rewritten_ids", {"dag_id": store.run.dag_id, "dag_run_id": store.run.dag_run_id})
    return [row[0] for row in rows]
