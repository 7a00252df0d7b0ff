"""crmsync's metrics, through Airflow's own metrics client (``airflow.sdk.observability.stats``),
so the deployment's StatsD or OpenTelemetry settings apply, with its prefix and allow list.

Every data task emits, when it ends (success or failure):

- counters ``crmsync.<operation>.<count>`` for each count of its run that is not zero
  (``fetched``, ``created``, ``updated``, ``unchanged``, ``skipped``, ``pushed``, ``failed``,
  ``conflicts``, ``vanished``, ``gave_up``, ``changed``, ``linked``, ``held``);
- counters ``crmsync.<operation>.sumit_requests``, ``.rate_limited`` (SUMIT's 429s) and
  ``.retries`` (tries the hook repeated after a transient fault);
- timers ``crmsync.<operation>.duration`` (the task) and, where the task has them,
  ``crmsync.<operation>.read_duration`` / ``.merge_duration`` (a pull: waiting for SUMIT's pages,
  merging them into the table) and ``crmsync.push.push_duration``;
- a counter ``crmsync.task.failed`` when it fails;

and each DAG run's report task ``crmsync.run.<status>`` (``success``, ``warning``, ``failed``).

Each carries the tags ``dag_id``, ``task_id``, ``operation`` and ``api_profile`` (used by
DogStatsD, InfluxDB-style StatsD and OpenTelemetry; plain StatsD drops them, and the names
above still say what was counted). The receiver of SUMIT's triggers counts in the api-server:
``crmsync.receiver.received``, ``.stored``, ``.collapsed``, ``.refused`` (tag ``reason``:
``token``, ``too_large``, ``malformed``, ``database``) and the gauge ``crmsync.receiver.inbox_pending``.
A metric never fails a task or a request: the client's errors are logged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

COUNTS = ("fetched", "created", "updated", "unchanged", "skipped", "pushed", "failed", "conflicts", "vanished",
          "gave_up", "changed", "linked", "held")
PREFIX = "crmsync"


def _stats() -> Any:
    from airflow.sdk.observability.stats import Stats  # the task's client: the deployment's [metrics] settings

    return Stats


def task_finished(*, operation: str, tags: Mapping[str, str], counts: Mapping[str, Any] | None,
                  seconds: float, phases: Mapping[str, float], sumit: Mapping[str, int], failed: bool,
                  stats: Any = None) -> None:
    """Everything one task observed, sent at its end."""
    try:
        stats = stats or _stats()
        tags = dict(tags)
        for name in COUNTS:
            value = (counts or {}).get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                stats.incr(f"{PREFIX}.{operation}.{name}", count=value, tags=tags)
        for name, value in sumit.items():
            if value > 0:
                stats.incr(f"{PREFIX}.{operation}.{name}", count=int(value), tags=tags)
        stats.timing(f"{PREFIX}.{operation}.duration", timedelta(seconds=seconds), tags=tags)
        for phase, phase_seconds in phases.items():
            stats.timing(f"{PREFIX}.{operation}.{phase}_duration", timedelta(seconds=phase_seconds), tags=tags)
        if failed:
            stats.incr(f"{PREFIX}.task.failed", tags=tags)
    except Exception as exc:  # metrics are never worth a failed sync
        log.warning("crmsync: could not send metrics: %s", exc)


def run_finished(*, status: str, tags: Mapping[str, str], stats: Any = None) -> None:
    """A DAG run's verdict (its report task): ``crmsync.run.success|warning|failed``."""
    try:
        (stats or _stats()).incr(f"{PREFIX}.run.{status}", tags=dict(tags))
    except Exception as exc:
        log.warning("crmsync: could not send metrics: %s", exc)


def receiver(event: str, count: int = 1, *, reason: str | None = None, stats: Any = None) -> None:
    """A counter of the receiver of SUMIT's triggers (the api-server's metrics client)."""
    try:
        stats = stats or _server_stats()
        tags = {"reason": reason} if reason else {}
        name = f"{PREFIX}.receiver.{event}" + (f".{reason}" if reason else "")
        if count > 0:
            stats.incr(name, count=count, tags=tags)
    except Exception as exc:
        log.warning("crmsync: could not send metrics: %s", exc)


def receiver_inbox(pending: int, stats: Any = None) -> None:
    try:
        (stats or _server_stats()).gauge(f"{PREFIX}.receiver.inbox_pending", pending)
    except Exception as exc:
        log.warning("crmsync: could not send metrics: %s", exc)


def _server_stats() -> Any:
    try:
        from airflow.observability.stats import Stats  # the api-server's own client
    except ImportError:  # pragma: no cover - older layouts
        from airflow.sdk.observability.stats import Stats
    return Stats
