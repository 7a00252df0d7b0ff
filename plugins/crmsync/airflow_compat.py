"""Workarounds for Airflow behaviour that would leak the SUMIT API key.

Airflow 3.3's in-process runner (``airflow dags test``, ``dag.test()``) logs every message
a task sends to its supervisor at DEBUG level, including ``MaskSecret`` messages, whose
body *is* the secret being masked: Airflow's own masking of a connection's password writes
that password to the log. The socket supervisor used by real workers already omits those
bodies ("body omitted"); this makes the in-process one do the same. The suite runs the DAGs
at DEBUG and scans the output, so a future Airflow that changes this is noticed.
"""

from __future__ import annotations

from typing import Any


class _BodyOmittingLog:
    """Stands in for the comms logger while one MaskSecret message is sent."""

    def __init__(self, log: Any, msg: Any):
        self._log, self._msg = log, msg

    def debug(self, event: str, **kw: Any) -> None:
        kw.pop("msg", None)
        self._log.debug(f"{event} (body omitted)", msg=type(self._msg))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def omit_mask_secret_bodies_in_process() -> None:
    try:
        from airflow.sdk.execution_time.comms import MaskSecret
        from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms
    except ImportError:  # another Airflow layout: nothing to patch
        return
    original = InProcessSupervisorComms.send
    if getattr(original, "_crmsync_omits_secrets", False):
        return

    def send(self: Any, msg: Any) -> Any:
        if not isinstance(msg, MaskSecret):
            return original(self, msg)
        log = self.log
        self.log = _BodyOmittingLog(log, msg)
        try:
            return original(self, msg)
        finally:
            self.log = log

    send._crmsync_omits_secrets = True  # type: ignore[attr-defined]
    InProcessSupervisorComms.send = send
