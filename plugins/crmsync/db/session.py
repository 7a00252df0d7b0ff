"""A store's session with the customers database: its connection and transaction, how a
statement is run, the change journal's run, the schema, the record-error queue, the run's row
and crmsync's writer lock. The pull's and the push's statements build on it
(:mod:`crmsync.db.pull_statements`, :mod:`crmsync.db.push_statements`); :class:`crmsync.db.store.CustomerStore`
is all of them.

Takes a psycopg 3 connection and knows nothing of Airflow. A batch is one statement whatever
its size: a pulled page travels as one JSON document, other batches as column arrays
(``unnest``), so a page costs the same few round trips however many customers it holds. Writes
become visible at :meth:`StoreSession.commit`; a dry-run store never commits and rolls back on
close, so a dry run reports exactly what a real run would write, and writes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import msgspec
import psycopg

import crmsync
from crmsync.core.errors import ConfigurationError
from crmsync.db import schema_version
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


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


_PLANNED_EACH_TIME = frozenset({"pull_page", "update_pulled", "pull_unknown_records"})
FAST_JSON = msgspec.json.Encoder()


def rows_json(rows: Any) -> str:
    """A page's rows (or ids) as JSON text: msgspec writes 1,000 rows four times faster than
    ``json``; what it cannot write (an integer beyond 64 bits in a custom field) goes to ``json``."""
    try:
        return FAST_JSON.encode(rows).decode("utf-8")
    except (msgspec.MsgspecError, TypeError, OverflowError):
        return json_text(rows)


def as_columns(rows: Sequence[dict[str, Any]], names: Iterable[str]) -> dict[str, list[Any]]:
    """Rows as one list per column: the shape the ``unnest`` statements take."""
    return {name: [row[name] for row in rows] for name in names}


class StoreSession:
    def __init__(self, conn: Any, run: RunRef, *, dry_run: bool = False, max_attempts: int = 5) -> None:
        if not hasattr(conn, "pgconn"):
            raise ConfigurationError("crmsync needs a psycopg 3 connection (the postgres provider's default).")
        self.conn = conn
        self.run = run
        self.dry_run = dry_run
        self.max_attempts = max_attempts  # failures of one record before it is given up
        self.round_trips = 0  # statements sent, for the logs and the benchmark
        self.phase_seconds: dict[str, float] = {}  # time in each phase of the job (read, merge), for its metrics
        self.match_keys: tuple[str, ...] = ()  # the keys of this pull's matching (MatchStatements.start_matching)
        self._no_jit()

    def _no_jit(self) -> None:
        """No JIT compiling in this session. PostgreSQL compiles a statement whose estimated cost is
        high, and :meth:`hash_joins` makes every plan's cost enormous by disabling nested loops: the
        set-based match of an adoption spent 1 s of its 1.8 s compiling (docs/performance.md). The
        store's statements read indexed rows or a set once; compiling never pays for itself."""
        self._set_for_session("jit", "off")

    def _set_for_session(self, name: str, value: str) -> None:
        """Set PostgreSQL setting ``name`` for the rest of the session: in a transaction of its own
        when none is open, so a later rollback of the store's work does not undo it."""
        query = "SELECT set_config(%(name)s, %(value)s, false)"
        if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            with self.conn.transaction():
                self.fetch(query, {"name": name, "value": value}, raw=True)
        else:
            self.fetch(query, {"name": name, "value": value}, raw=True)

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, name_or_sql: str, params: Any = None, *, raw: bool = False,
              switch: tuple[str | bool, ...] | None = None) -> list[tuple]:
        """Run one statement (an include/sql name, or SQL with ``raw``) in the store's transaction;
        its rows. ``switch`` (name, on[, name, on ...]) picks the statement's parts for those switches
        (crmsync.db.sql.load_switched). The store's own methods and the modules beside it (plans,
        revert_store, conflict_store) use it; nothing is committed here."""
        if raw:
            query = name_or_sql
        else:
            query = sql.load_switched(name_or_sql, *switch) if switch else sql.load(name_or_sql)
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
        self._set_for_session("crmsync.journal_run", json_text(
            {"dag_id": self.run.dag_id, "dag_run_id": self.run.dag_run_id, "direction": direction}))

    @contextlib.contextmanager
    def hash_joins(self) -> Iterator[None]:
        """Plan the statements of the block with hash joins, never nested loops: for statements
        over rows this transaction wrote (not in any statistics yet) or over the results of
        aggregates (estimated at one row), where a nested loop over 100,000 rows each way never ends."""
        self.fetch("SELECT set_config('enable_nestloop', 'off', true)", raw=True)
        try:
            yield
        finally:
            if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                self.fetch("SELECT set_config('enable_nestloop', 'on', true)", raw=True)

    def changed_count(self, direction: str) -> int:
        """Customers this run changed in ``direction`` so far (its journal rows, committed or not)."""
        return self.fetch("journal_count", {**self.run_params(), "direction": direction})[0][0]

    # -- schema -------------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create or upgrade every crmsync table and function, and record the schema version they
        are at (crm_sync_schema); safe to run at any time. Refuses tables a newer crmsync upgraded."""
        encoding = self.fetch("SHOW server_encoding", raw=True)[0][0]
        if encoding.upper() not in ("UTF8", "UTF-8"):
            raise ConfigurationError(
                f"The customers database uses encoding {encoding}; crmsync needs UTF8 (Hebrew text, fingerprints)."
            )
        self.fetch("SELECT pg_advisory_xact_lock(hashtext('crmsync.schema'))", raw=True)  # schema.sql's own lock
        found = schema_version.current(self)
        schema_version.refuse_newer(found, crmsync.__version__)
        self.fetch("schema")
        schema_version.record(self, found, crmsync.__version__)
        self.commit()

    def table_exists(self) -> bool:
        return self.fetch("SELECT to_regclass('sumit_customers') IS NOT NULL", raw=True)[0][0]

    def table_facts(self) -> dict[str, Any]:
        """The table's database, columns (name, type) and row count (lineage); empty without the table."""
        if not self.table_exists():
            return {}
        database, columns, rows = self.fetch("lineage_table")[0]
        return {"database": database, "columns": [tuple(c) for c in columns or ()], "rows": int(rows)}

    def add_phase_time(self, phase: str, seconds: float) -> None:
        self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + seconds

    def record_errors(self, errors: Iterable[ErrorRow]) -> list[GaveUp]:
        """Queue failed records (one more attempt if already pending); returns those given up."""
        by_key = {(e.phase, e.key): e for e in errors}  # one row per record per statement
        rows = [
            {"phase": e.phase, "record_key": e.key, "customer_id": e.customer_id,
             "sumit_customer_id": e.sumit_customer_id, "error": e.error,
             "record": None if e.record is None else json_text(e.record), "fingerprint": e.fingerprint,
             "retryable": e.retryable}
            for e in by_key.values()
        ]
        if not rows:
            return []
        names = ["phase", "record_key", "customer_id", "sumit_customer_id", "error", "record", "fingerprint", "retryable"]
        result = self.fetch("record_errors", {**as_columns(rows, names), **self.run_params(),
                                               "max_attempts": self.max_attempts})
        return [GaveUp(phase, key, attempts) for phase, key, attempts, status in result if status == "gave_up"]

    def resolve_errors(self, phase: str, record_keys: Sequence[str]) -> None:
        """Mark pending records of ``phase`` as synced now."""
        if record_keys:
            self.fetch("resolve_errors", {"phase": phase, "record_keys": list(record_keys)})

    def run_params(self) -> dict[str, str]:
        """The run's ids as the statements take them."""
        return {"dag_id": self.run.dag_id, "dag_run_id": self.run.dag_run_id}

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
