"""Deployment settings read when the DAG files are parsed (environment variables), and the
writer lock's timeout, read when a task runs.

Per-run choices are DAG params; per-connection tuning lives in the connection's extra.
These are the few that shape the DAGs themselves.
"""

from __future__ import annotations

import os
from datetime import timedelta

from crmsync.core.errors import ConfigurationError

SYNC_CRON = os.environ.get("CRMSYNC_SYNC_CRON", "0 3 * * *")
SYNC_TIMEZONE = os.environ.get("CRMSYNC_SYNC_TIMEZONE", "Asia/Jerusalem")
SUMIT_CONN_ID = os.environ.get("CRMSYNC_SUMIT_CONN_ID", "sumit_default")
POSTGRES_CONN_ID = os.environ.get("CRMSYNC_POSTGRES_CONN_ID", "crm_postgres")
TASK_RETRIES = int(os.environ.get("CRMSYNC_TASK_RETRIES", "2"))
TASK_RETRY_DELAY = timedelta(seconds=float(os.environ.get("CRMSYNC_TASK_RETRY_DELAY_SECONDS", "120")))

# Every task that calls SUMIT runs in this Airflow pool, one slot each, so however many runs
# and workers there are, at most (pool slots x 2 x push_concurrency) calls reach SUMIT at once
# (2 x only until SUMIT's first 429: crmsync.sumit.budget.BURST).
# Create it once: `airflow pools set sumit_api 2 "crmsync: tasks calling SUMIT"`.
# How long a mass change waits for a person before the run fails (nothing written).
APPROVAL_TIMEOUT = timedelta(hours=float(os.environ.get("CRMSYNC_APPROVAL_TIMEOUT_HOURS", "24")))
SUMIT_POOL = os.environ.get("CRMSYNC_SUMIT_POOL", "sumit_api")

DEFAULT_ARGS = {
    "owner": "crmsync",
    "retries": TASK_RETRIES,
    "retry_delay": TASK_RETRY_DELAY,
    "retry_exponential_backoff": True,
}

LOCK_TIMEOUT_ENV = "CRMSYNC_LOCK_TIMEOUT_SECONDS"
DEFAULT_LOCK_TIMEOUT_SECONDS = 600.0


def lock_timeout_seconds() -> float:
    """How long a task waits for crmsync's writer lock held by another run (10 minutes by default).

    Read when the task runs, not when the DAG file is parsed: it is the worker's setting, and
    changing it needs no DAG re-parse. 0 means do not wait at all.
    """
    text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise ConfigurationError(f"{LOCK_TIMEOUT_ENV} must be a number of seconds (0 or more), not {text!r}.")
    return value
