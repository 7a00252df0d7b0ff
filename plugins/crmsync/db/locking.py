"""crmsync's writer lock: one PostgreSQL advisory lock held by every task that writes customers.

``max_active_runs=1`` keeps two runs of one DAG apart, but not a manual
``crm_push_customers`` started while the scheduled ``crm_bidirectional_sync`` is pulling:
without a lock both would merge pages and write pushes back to the same rows at once. The
database is the one thing every worker shares, so the lock lives there.

It is a session-level advisory lock taken on the store's own connection, which gives it three
properties a lock row or a file would not have:

- it outlives the per-page commits (a transaction-level lock would end with the first page);
- it shares the writes' fate: when the connection dies (worker killed, server restarted,
  network gone) PostgreSQL releases it, and the task cannot write without it either, since
  its writes go through that same dead connection;
- nothing has to clean it up after a crash.

A second writer waits, saying who holds the lock, up to ``CRMSYNC_LOCK_TIMEOUT_SECONDS``
(10 minutes by default), then fails with :class:`LockTimeout`, which Airflow retries later.
It polls rather than blocking in ``pg_advisory_lock`` so the wait can name the holder as it
changes, log its progress, and end exactly at its deadline without leaving the store's
session in an aborted transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from crmsync.core.errors import CrmSyncError
from crmsync.db.store import CustomerStore

# pg_advisory_lock(int4, int4): "crms" in ASCII, then 1 for the customers tables. Visible in
# pg_locks as classid 1668443507, objid 1, objsubid 2.
LOCK_KEY = (0x63726D73, 1)
APPLICATION_NAME_MAX = 63  # PostgreSQL keeps NAMEDATALEN - 1 bytes of application_name
POLL_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 30.0


class LockTimeout(CrmSyncError):
    """Another crmsync task held the writer lock for longer than the configured wait. Transient:
    Airflow retries the task later."""


def application_name(dag_id: str, run_id: str) -> str:
    """What the lock holder's session is called: the DAG run, cut to what PostgreSQL keeps.

    The run matters more than the task (a run's tasks take the lock one after the other), and
    non-ASCII characters would reach pg_stat_activity as ``?`` anyway.
    """
    text = f"crmsync {dag_id} {run_id}".encode("ascii", "replace").decode("ascii")
    return text[:APPLICATION_NAME_MAX]


def describe_holder(store: CustomerStore) -> str:
    """One phrase naming who holds the lock now, for the wait and timeout messages."""
    holders = store.customers_lock_holders(LOCK_KEY)
    if not holders:
        return "a session that has just released it"
    pid, name, _connected_at, connected_for = holders[0]
    phrase = f"PostgreSQL backend pid {pid}"
    if name:
        phrase += f" ({name!r})"
    if connected_for is not None:
        phrase += f", connected {round(connected_for.total_seconds())} s ago"
    return phrase


@contextmanager
def customers_lock(
    store: CustomerStore,
    *,
    holder: str,
    timeout: float,
    log: logging.Logger,
    poll_seconds: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold crmsync's writer lock for the block, waiting up to ``timeout`` seconds for it.

    ``holder`` becomes the session's application_name, which is how a waiting writer (and a
    DBA looking at pg_stat_activity) learns which DAG run holds the lock.
    """
    started = clock()
    if not store.try_customers_lock(LOCK_KEY, application_name=holder):
        who = describe_holder(store)
        log.warning("Waiting for the crmsync lock held by %s: another crmsync run is writing customers. "
                    "Waiting up to %g s (CRMSYNC_LOCK_TIMEOUT_SECONDS).", who, timeout)
        last_progress = started
        while True:
            waited = clock() - started
            if waited >= timeout:
                raise LockTimeout(
                    f"Gave up after {waited:.1f} s waiting for the crmsync lock held by {describe_holder(store)}: "
                    f"another crmsync run is still writing customers. The task is retried later; to wait longer, "
                    f"raise CRMSYNC_LOCK_TIMEOUT_SECONDS (now {timeout:g} s)."
                )
            sleep(max(0.0, min(poll_seconds, timeout - waited)))
            if store.try_customers_lock(LOCK_KEY, application_name=holder):
                break
            if clock() - last_progress >= PROGRESS_EVERY_SECONDS:
                log.warning("Still waiting for the crmsync lock (%.0f s of %g s), held by %s.",
                            clock() - started, timeout, describe_holder(store))
                last_progress = clock()
        log.info("Took the crmsync lock after waiting %.1f s.", clock() - started)
    else:
        log.info("Took the crmsync lock (no other crmsync task is writing customers).")
    try:
        yield
    finally:
        try:
            released = store.release_customers_lock(LOCK_KEY)
        except psycopg.Error as exc:  # a dead connection: PostgreSQL has released the lock with it
            log.warning("Could not release the crmsync lock (%s); PostgreSQL releases it with the session.",
                        type(exc).__name__)
        else:
            if released:
                log.info("Released the crmsync lock.")
            else:  # the session was replaced under us: say so rather than pretend
                log.warning("The crmsync lock was no longer held by this task's session when it ended.")
