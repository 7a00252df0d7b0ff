"""The customers database: every read and write the sync makes, batched, SQL from include/sql.

Takes a psycopg 3 connection and knows nothing of Airflow. A batch is one statement whatever
its size: a pulled page travels as one JSON document, other batches as column arrays
(``unnest``), so a page costs the same few round trips however many customers it holds. Writes become visible at :meth:`CustomerStore.commit`; a dry-run store never
commits and rolls back on close, so a dry run reports exactly what a real run would write,
and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import psycopg

from crmsync.core.errors import ConfigurationError
from crmsync.core.fingerprint import custom_fingerprint
from crmsync.core.merge import PullDecision, SyncState
from crmsync.core.model import SYNCED_COLUMNS, LocalCustomer, PushResult, RejectedRecord
from crmsync.db import sql


@dataclass(frozen=True)
class RunRef:
    """Which DAG run the writes belong to."""

    dag_id: str
    dag_run_id: str


@dataclass(frozen=True)
class ErrorRow:
    phase: str  # "pull" or "push"
    error: str
    customer_id: int | None = None
    sumit_customer_id: str | None = None
    record: dict[str, Any] | None = None
    fingerprint: str | None = None  # push: the local row's fingerprint when it failed
    retryable: bool = True  # False: nothing a later run can retry (an unknown local id)

    @property
    def key(self) -> str:
        """What identifies the record across runs: local id, CRM id, or the record's content."""
        if self.customer_id is not None:
            return str(self.customer_id)
        if self.sumit_customer_id is not None:
            return self.sumit_customer_id
        content = json.dumps(self.record, sort_keys=True, ensure_ascii=False, default=str)
        return "content:" + hashlib.md5(content.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class GaveUp:
    phase: str
    record_key: str
    attempts: int


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


_PLANNED_EACH_TIME = frozenset({"pull_page", "update_pulled"})
_FAST_JSON = msgspec.json.Encoder()


def _rows_json(rows: Any) -> str:
    """A page's rows (or ids) as JSON text: msgspec writes 1,000 rows four times faster than
    ``json``; what it cannot write (an integer beyond 64 bits in a custom field) goes to ``json``."""
    try:
        return _FAST_JSON.encode(rows).decode("utf-8")
    except (msgspec.MsgspecError, TypeError, OverflowError):
        return _json(rows)


def _columns(rows: Sequence[dict[str, Any]], names: Iterable[str]) -> dict[str, list[Any]]:
    """Rows as one list per column: the shape the ``unnest`` statements take."""
    return {name: [row[name] for row in rows] for name in names}


def encode_rows(rows: Sequence[list[Any]]) -> bytes:
    """Pulled rows (crmsync.core.pulled) as :meth:`CustomerStore.pull_page` takes them: one JSON array
    of arrays, by position (include/sql/pull_page.sql reads them by index), as UTF-8 bytes,
    sent as they are (a Python str of Hebrew text takes twice the memory, and would be encoded
    again). Needs no database, so the pull prepares page n+1 this way while page n is merged."""
    try:
        return _FAST_JSON.encode(rows)
    except (msgspec.MsgspecError, TypeError, OverflowError):
        return _json(rows).encode("utf-8")


def decode_rows(encoded: bytes | str) -> list[list[Any]]:
    """The rows :func:`encode_rows` wrote (also as text, as a held pull's listing keeps them)."""
    return json.loads(encoded)


class CustomerStore:
    def __init__(self, conn: Any, run: RunRef, *, dry_run: bool = False, max_attempts: int = 5) -> None:
        if not hasattr(conn, "pgconn"):
            raise ConfigurationError("crmsync needs a psycopg 3 connection (the postgres provider's default).")
        self.conn = conn
        self.run = run
        self.dry_run = dry_run
        self.max_attempts = max_attempts  # failures of one record before it is given up
        self.round_trips = 0  # statements sent, for the logs and the benchmark

    # -- transactions -----------------------------------------------------------------------

    def commit(self) -> None:
        if not self.dry_run:
            self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        try:
            self.conn.rollback()  # a dry run's writes, or an unfinished batch's, are undone here
        finally:
            self.conn.close()

    def __enter__(self) -> "CustomerStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, name_or_sql: str, params: Any = None, *, raw: bool = False) -> list[tuple]:
        """Run one statement (an include/sql name, or SQL with ``raw``) in the store's transaction;
        its rows. The store's own methods and the modules beside it (plans, revert_store,
        conflict_store) use it; nothing is committed here."""
        query = name_or_sql if raw else sql.load(name_or_sql)
        with self.conn.cursor() as cur:
            # A page statement is planned afresh each time (0.3 ms): psycopg would otherwise
            # prepare it after five pages, and a plan made while the table was still empty
            # (a first pull) scans the whole table for every row of every later page.
            cur.execute(query, params, prepare=False if name_or_sql in _PLANNED_EACH_TIME else None)
            self.round_trips += 1
            return cur.fetchall() if cur.description else []

    # -- the change journal (crm_sync_changes) -----------------------------------------------

    def journal_as(self, direction: str) -> None:
        """From now on, every change this session makes to sumit_customers is journaled as this
        run's, in ``direction`` (pull, push or revert), by the table's triggers (include/sql/schema.sql),
        in the same transaction as the change. Set in a transaction of its own when none is open,
        so a later rollback of the store's work does not undo it."""
        value = _json({"dag_id": self.run.dag_id, "dag_run_id": self.run.dag_run_id, "direction": direction})
        query = "SELECT set_config('crmsync.journal_run', %(run)s, false)"
        if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            with self.conn.transaction():
                self.fetch(query, {"run": value}, raw=True)
        else:
            self.fetch(query, {"run": value}, raw=True)

    def changed_count(self, direction: str) -> int:
        """Customers this run changed in ``direction`` so far (its journal rows, committed or not)."""
        return self.fetch("journal_count", {**self.run_params(), "direction": direction})[0][0]

    # -- schema -------------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create or upgrade every crmsync table and function; safe to run at any time."""
        encoding = self.fetch("SHOW server_encoding", raw=True)[0][0]
        if encoding.upper() not in ("UTF8", "UTF-8"):
            raise ConfigurationError(
                f"The customers database uses encoding {encoding}; crmsync needs UTF8 (Hebrew text, fingerprints)."
            )
        self.fetch("schema")
        self.commit()

    def table_exists(self) -> bool:
        return self.fetch("SELECT to_regclass('sumit_customers') IS NOT NULL", raw=True)[0][0]

    # -- pull -----------------------------------------------------------------------------------

    def pull_page(
        self, rows: bytes, *, also_seen: Sequence[str], synced_at: datetime, full_resync: bool, note_seen: bool = True
    ) -> tuple[int, dict[str, SyncState]]:
        """Merge what needs no decision from one pulled page, in one statement (include/sql/pull_page.sql).

        ``rows`` are the page's customers, one per CRM id, as :func:`encode_rows` wrote them.
        Remembers their CRM ids (and ``also_seen``) as seen by this pull (unless ``note_seen`` is
        false: nothing will be flagged as vanished), inserts the customers
        no local row is linked to, and returns how many it inserted and, by CRM id, the local
        state of the linked customers whose CRM copy changed since the last pull (every linked
        one with ``full_resync``): those that merge.plan_pull must decide.
        """
        result = self.fetch("pull_page", {
            "rows": rows, "also_seen": _rows_json(list(also_seen)), "synced_at": synced_at,
            "synced_at_text": synced_at.isoformat(), "full_resync": full_resync, "note_seen": note_seen,
        })
        states = {}
        for row in result:
            if row[1] is not None:
                states[row[2]] = SyncState(
                    id=row[1], fields=dict(zip(SYNCED_COLUMNS, row[3:13])), synced_fingerprint=row[13],
                    crm_fingerprint=row[14], crm_custom_fingerprint=row[15], updated_at=row[16],
                    local_fingerprint=row[17],
                )
        return result[0][0], states

    def apply_pull(self, decisions: Iterable[PullDecision], *, synced_at: datetime, policy: str) -> set[int]:
        """Write the decisions taken on linked customers: one UPDATE and one conflicts INSERT at most.

        Returns the ids of the rows updated; a row edited locally since it was read is not.
        """
        stamp = synced_at.isoformat()
        updates, conflicts = [], []
        for d in decisions:
            c = d.customer
            if d.write:
                updates.append({
                    "id": d.local_id, "replace_fields": d.replace_fields, "merge_custom": d.merge_custom,
                    "mark_agreed": d.mark_agreed, **c.fields, "custom": c.custom,
                    "fingerprint": d.fingerprint, "agreed_fingerprint": d.agreed_fingerprint,
                    "custom_fingerprint": d.custom_fingerprint,
                    "expected_fingerprint": d.expected_fingerprint,
                })
            if d.conflict is not None:
                conflicts.append({
                    "customer_id": d.local_id, "sumit_customer_id": c.sumit_id, "winner": d.conflict.winner,
                    "local_values": _json(d.conflict.local_fields), "crm_values": _json(d.conflict.crm_fields),
                })
        updated = []
        if updates:
            updated = self.fetch(
                "update_pulled", {"rows": _rows_json(updates), "synced_at": synced_at, "synced_at_text": stamp}
            )
        if conflicts:
            names = ["customer_id", "sumit_customer_id", "winner", "local_values", "crm_values"]
            self.fetch("insert_conflicts", {**_columns(conflicts, names), **self.run_params(), "policy": policy})
        return {row[0] for row in updated}

    def record_errors(self, errors: Iterable[ErrorRow]) -> list[GaveUp]:
        """Queue failed records (one more attempt if already pending); returns those given up."""
        by_key = {(e.phase, e.key): e for e in errors}  # one row per record per statement
        rows = [
            {"phase": e.phase, "record_key": e.key, "customer_id": e.customer_id,
             "sumit_customer_id": e.sumit_customer_id, "error": e.error,
             "record": None if e.record is None else _json(e.record), "fingerprint": e.fingerprint,
             "retryable": e.retryable}
            for e in by_key.values()
        ]
        if not rows:
            return []
        names = ["phase", "record_key", "customer_id", "sumit_customer_id", "error", "record", "fingerprint", "retryable"]
        result = self.fetch("record_errors", {**_columns(rows, names), **self.run_params(),
                                               "max_attempts": self.max_attempts})
        return [GaveUp(phase, key, attempts) for phase, key, attempts, status in result if status == "gave_up"]

    def resolve_errors(self, phase: str, record_keys: Sequence[str]) -> None:
        """Mark pending records of ``phase`` as synced now."""
        if record_keys:
            self.fetch("resolve_errors", {"phase": phase, "record_keys": list(record_keys)})

    def resolve_pull_errors_after_complete_pull(self, still_rejected: Sequence[str]) -> None:
        self.fetch("resolve_pull_errors_after_complete_pull", {"still_rejected": list(still_rejected)})

    # -- vanished customers ---------------------------------------------------------------------

    def start_seen(self) -> None:
        """Begin collecting the CRM ids this pull sees (a temporary table of this session)."""
        self.fetch("seen_ids")

    def flag_vanished(self, *, pulled_at: datetime) -> tuple[int, int]:
        """After a complete pull: (newly flagged as missing from the CRM, unflagged as back)."""
        self.fetch("analyze_seen_ids")
        # A hash join, always: the pull's own inserts are not in sumit_customers' statistics yet
        # (one transaction), and a nested loop over 100,000 rows each way never ends.
        self.fetch("SELECT set_config('enable_nestloop', 'off', true)", raw=True)
        try:
            flagged, unflagged = self.fetch("flag_vanished", {"pulled_at_text": pulled_at.isoformat()})[0]
        finally:
            if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                self.fetch("SELECT set_config('enable_nestloop', 'on', true)", raw=True)
        return flagged, unflagged

    def record_rejected(self, rejected: Iterable[RejectedRecord]) -> tuple[list[str], list[GaveUp]]:
        """Queue rejected CRM records; returns their keys and those given up."""
        rows = [ErrorRow(phase="pull", error=r.reason, sumit_customer_id=r.sumit_id, record=r.excerpt) for r in rejected]
        return [row.key for row in rows], self.record_errors(rows)

    def run_params(self) -> dict[str, str]:
        """The run's ids as the statements take them."""
        return {"dag_id": self.run.dag_id, "dag_run_id": self.run.dag_run_id}

    # -- push -----------------------------------------------------------------------------------

    def pending_push_ids(self, ids: Sequence[int] | None) -> list[int]:
        """The push retry queue (optionally limited to ``ids``), in id order."""
        return [row[0] for row in self.fetch("select_pending_pushes", {"ids": list(ids) if ids is not None else None})]

    def unknown_ids(self, ids: Sequence[int]) -> list[int]:
        return [row[0] for row in self.fetch("select_unknown_ids", {"ids": list(ids)})]

    def push_candidates(
        self, *, ids: Sequence[int] | None, only_changed: bool, chunk_size: int = 500
    ) -> Iterator[list[LocalCustomer]]:
        """Customers to push, chunk by chunk in id order; never the whole table in memory."""
        after_id = 0
        while True:
            rows = self.fetch("select_push_candidates", {
                "after_id": after_id, "ids": list(ids) if ids is not None else None,
                "only_changed": only_changed, "limit": chunk_size,
            })
            if not rows:
                return
            yield [
                LocalCustomer(id=row[0], sumit_id=row[1], fields=dict(zip(SYNCED_COLUMNS, row[2:12])), fingerprint=row[12])
                for row in rows
            ]
            if len(rows) < chunk_size:
                return
            after_id = rows[-1][0]

    def mark_pushed(self, accepted: Sequence[tuple[LocalCustomer, PushResult]], *, synced_at: datetime) -> int:
        """Record the customers SUMIT accepted, in one statement (not committed)."""
        if not accepted:
            return 0
        params = {
            # per customer, by position: id, CRM id, fingerprint, and the journal's "after": what
            # was sent (SUMIT's values before are not known). One JSON text: psycopg writes four
            # arrays of 10,000 in Python, five times slower.
            "rows": _rows_json([(c.id, r.sumit_id, c.fingerprint, {k: v for k, v in c.fields.items() if v is not None})
                                for c, r in accepted]),
            "synced_at": synced_at,
            "synced_at_text": synced_at.isoformat(),
            "empty_custom_fingerprint": custom_fingerprint({}),
            **self.run_params(),
        }
        return len(self.fetch("mark_pushed", params))

    # -- creates whose answer may have been lost ---------------------------------------------

    def mark_create_sent(self, ids: Sequence[int]) -> None:
        """Remember that these customers' creates are being sent (commit before sending)."""
        if ids:
            self.fetch("mark_create_sent", {"ids": list(ids)})

    def unconfirmed_creates(self) -> dict[int, str]:
        """Customers whose create was sent but whose CRM id was never stored: id -> fingerprint."""
        return {row[0]: row[1] for row in self.fetch("select_unconfirmed_creates")}

    def link_created(self, found: dict[int, str]) -> set[int]:
        """Store the CRM ids found for unconfirmed creates; returns the local ids linked (a CRM
        id another row already holds is not linked)."""
        if not found:
            return set()
        rows = [{"id": local_id, "sumit_customer_id": sumit_id} for local_id, sumit_id in found.items()]
        return {row[0] for row in self.fetch("link_created", {"rows": _json(rows)})}

    def clear_create_sent(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if ids:
            self.fetch("clear_create_sent", {"ids": ids})

    # -- run outcome ----------------------------------------------------------------------------

    def write_run(self, row: dict[str, Any]) -> None:
        self.fetch("upsert_run", {**self.run_params(), **row})
        self.commit()

    # -- the writer lock (see crmsync.db.locking) --------------------------------------------------

    def try_customers_lock(self, key: tuple[int, int], *, application_name: str) -> bool:
        """Take crmsync's session-level writer lock if it is free; name this session.

        Runs in its own short transaction (a savepoint inside an open one), so the store's
        writes are untouched, and a dry run still commits nothing: the lock is a session's,
        not a transaction's, and is kept whatever the transaction does.
        """
        params = {"lock_class": key[0], "lock_object": key[1], "application_name": application_name}
        with self.conn.transaction():
            return bool(self.fetch("customers_lock_try", params)[0][-1])

    def customers_lock_holders(self, key: tuple[int, int]) -> list[tuple[int, str | None, Any, Any]]:
        """(pid, application_name, backend_start, connected_for) of the session holding the lock."""
        with self.conn.transaction():
            return self.fetch("customers_lock_holder", {"lock_class": key[0], "lock_object": key[1]})

    def release_customers_lock(self, key: tuple[int, int]) -> bool:
        """Roll back what was not committed, then release the lock.

        Rolling back first means no other writer can start while this task's unfinished
        batch is still pending; the store's close would roll it back anyway.
        """
        self.conn.rollback()
        with self.conn.transaction():
            return bool(self.fetch("customers_lock_release", {"lock_class": key[0], "lock_object": key[1]})[0][0])
