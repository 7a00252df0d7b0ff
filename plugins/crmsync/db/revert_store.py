"""The database side of undoing a run: its reads and its one write, SQL from include/sql/revert_*.sql.

Functions that take a :class:`~crmsync.db.store.CustomerStore` (and so its connection, run and
dry-run mode), kept apart from the store so the store stays about syncing. Knows nothing of
Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmsync.db.store import CustomerStore

# The outcomes include/sql/revert_restore.sql gives each customer the undone run changed.
RESTORED = "restored"
ALREADY_RESTORED = "already_restored"
CHANGED_SINCE = "changed_since"
CREATED = "created"
LINK_ONLY = "link_only"
DELETED = "deleted"
OUTCOMES = (RESTORED, ALREADY_RESTORED, CHANGED_SINCE, CREATED, LINK_ONLY, DELETED)


@dataclass(frozen=True)
class RunMatch:
    """One DAG's run with the dag_run_id asked for, and what crmsync holds of it."""

    dag_id: str
    operation: str | None  # its crm_sync_runs row's operation; None: no row (its report never ran)
    revertible: int  # its crm_sync_changes rows a revert can undo (direction pull, revert or resolve)
    journaled: int  # all its crm_sync_changes rows (push ones included)
    created: int  # the customers it created (crm_sync_created)


def find_run(store: CustomerStore, dag_run_id: str) -> list[RunMatch]:
    """Every DAG with a run called ``dag_run_id`` (in crm_sync_runs or the change journal:
    crm_sync_changes, crm_sync_created), this revert run itself excepted."""
    rows = store.fetch("revert_find_run", {
        "target": dag_run_id, "own_dag_id": store.run.dag_id, "own_dag_run_id": store.run.dag_run_id,
    })
    return [RunMatch(dag_id=r[0], operation=r[1], revertible=r[2], journaled=r[3], created=r[4]) for r in rows]


@dataclass(frozen=True)
class Restore:
    """What one restore statement did."""

    outcomes: dict[int, str]  # every customer the undone run changed or created, by local id: one of OUTCOMES
    changes_columns: frozenset[int]  # those whose restore changes a column (what a push would send)


def restore(store: CustomerStore, *, dag_id: str, dag_run_id: str) -> Restore:
    """Restore, in one statement, what that run changed on customers nobody changed since
    (include/sql/revert_restore.sql; not committed). Journaled as the store's run only if the
    session journals (:meth:`CustomerStore.journal_as`)."""
    rows = store.fetch("revert_restore", {"dag_id": dag_id, "target": dag_run_id})
    return Restore(outcomes={row[0]: row[1] for row in rows},
                   changes_columns=frozenset(row[0] for row in rows if row[2]))


def restored_to_push(store: CustomerStore) -> list[int]:
    """The customers the store's (revert) run restored whose restore changed a column SUMIT
    holds, read from the run's own journal rows (direction revert), in id order."""
    rows = store.fetch("revert_restored_ids", {"dag_id": store.run.dag_id, "dag_run_id": store.run.dag_run_id})
    return [row[0] for row in rows]

