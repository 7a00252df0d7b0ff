"""Deployment settings read when the DAG files are parsed (environment variables).

Per-run choices are DAG params; per-connection tuning lives in the connection's extra.
These are the few that shape the DAGs themselves.
"""

from __future__ import annotations

import os
from datetime import timedelta

SYNC_CRON = os.environ.get("CRMSYNC_SYNC_CRON", "0 3 * * *")
SYNC_TIMEZONE = os.environ.get("CRMSYNC_SYNC_TIMEZONE", "Asia/Jerusalem")
SUMIT_CONN_ID = os.environ.get("CRMSYNC_SUMIT_CONN_ID", "sumit_default")
POSTGRES_CONN_ID = os.environ.get("CRMSYNC_POSTGRES_CONN_ID", "crm_postgres")
TASK_RETRIES = int(os.environ.get("CRMSYNC_TASK_RETRIES", "2"))
TASK_RETRY_DELAY = timedelta(seconds=float(os.environ.get("CRMSYNC_TASK_RETRY_DELAY_SECONDS", "120")))

DEFAULT_ARGS = {
    "owner": "crmsync",
    "retries": TASK_RETRIES,
    "retry_delay": TASK_RETRY_DELAY,
    "retry_exponential_backoff": True,
}
