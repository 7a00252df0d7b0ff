"""Workarounds for Airflow 3.3 behaviour of its in-process runner (``airflow dags test``,
``dag.test()``); real workers and the dag-processor need neither.

1. It would leak the SUMIT API key. Airflow 3.3's in-process runner (``airflow dags test``, ``dag.test()``) logs every message
a task sends to its supervisor at DEBUG level, including ``MaskSecret`` messages, whose
body *is* the secret being masked: Airflow's own masking of a connection's password writes
that password to the log. The socket supervisor used by real workers already omits those
bodies ("body omitted"); this makes the in-process one do the same. The suite runs the DAGs
at DEBUG and scans the output, so a future Airflow that changes this is noticed.

2. It cannot run the DAG-level callbacks of a DAG with a required param (``customer_ids`` of
   crm_push_customers). It builds the callbacks' context from the serialized task, whose
   params carry no value, and that fails (``ParamValidationError: Invalid input for param
   customer_ids: No value passed``) before any callback runs, so a failed run would not be
   notified. The dag-processor builds it from the parsed DAG and has no such problem (the
   live end-to-end test checks). Here the callbacks then run with the context Airflow gives
   when it knows no task: the DAG, the run id, the reason, and the last task instance.
"""

from __future__ import annotations

import sys
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


def run_dag_callbacks_despite_required_params_in_process() -> None:
    """Patch ``DagRun.execute_dag_callbacks`` (used only by ``dag.test``), in a process that has
    it loaded already (``airflow dags test``, a test suite); a worker never imports it."""
    module = sys.modules.get("airflow.models.dagrun")
    if module is None:
        return
    try:
        from airflow.sdk.exceptions import ParamValidationError
    except ImportError:  # another Airflow layout: nothing to patch
        return
    dag_run_class = module.DagRun
    original = dag_run_class.execute_dag_callbacks
    if getattr(original, "_crmsync_params", False):
        return

    def execute_dag_callbacks(self: Any, dag: Any, success: bool = True, relevant_ti: Any = None,
                              reason: str = "success") -> None:
        try:
            return original(self, dag, success=success, relevant_ti=relevant_ti, reason=reason)
        except ParamValidationError as error:
            self.log.warning("Airflow could not build the DAG callbacks' context (%s); running them with the run's "
                             "id and last task instance instead.", error)
        callbacks = dag.on_success_callback if success else dag.on_failure_callback
        context = {"dag": dag, "run_id": self.run_id, "reason": reason, "ti": relevant_ti}
        for callback in callbacks if isinstance(callbacks, list) else [callbacks] if callbacks else []:
            self.log.info("Executing on_%s dag callback: %r", "success" if success else "failure", callback)
            try:
                callback(context)
            except Exception:
                self.log.exception("Callback failed for %s", dag.dag_id)
        return None

    execute_dag_callbacks._crmsync_params = True  # type: ignore[attr-defined]
    dag_run_class.execute_dag_callbacks = execute_dag_callbacks
