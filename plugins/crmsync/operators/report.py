"""The last task of every crmsync DAG: one run row, one summary line, the run's verdict."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import TriggerRule
from airflow.sdk.exceptions import AirflowFailException

from crmsync.airflow_side import metrics
from crmsync.airflow_side.notifiers import SUMMARY_XCOM_KEY
from crmsync.core.summary import (
    DEFAULT_MAX_REJECT_RATIO,
    DEFAULT_MIN_REJECTS_TO_FAIL,
    FAILED,
    SyncCounts,
    detail_line,
    is_partial,
    reject_ratio,
    rejected,
    run_status,
    summary_line,
    too_many_rejects,
)
from crmsync.operators.sync import HELD_PLAN, _as_bool, _CrmSyncOperator


class CrmSyncReportOperator(_CrmSyncOperator):
    """Sum the phases' counts, write ``crm_sync_runs``, log the guide's summary line.

    Runs whatever happened upstream (trigger rule ``all_done``): a phase that left no result
    failed, and the run is recorded as ``failed`` with that phase's reason, then this task
    fails too so the DAG run is red. So does a run where more than ``max_reject_ratio`` of
    the records, and at least ``min_rejects_to_fail`` of them, were skipped or refused, and a
    partial run when ``fail_on_partial`` is set. Other partial runs are ``warning``s that stay
    green. The verdict is made before anything is written or said: the run row, the log's
    ``Status:`` line, the notification and Airflow's state always agree. The return value
    (XCom) is the summary the UI shows.
    """

    template_fields: Sequence[str] = ("dry_run", "fail_on_partial", "max_reject_ratio", "min_rejects_to_fail")

    def __init__(
        self,
        *,
        operation: str,
        phase_task_ids: Sequence[str],
        apply_task_id: str | None = None,
        fail_on_partial: bool | str = False,
        max_reject_ratio: float | str = DEFAULT_MAX_REJECT_RATIO,
        min_rejects_to_fail: int | str = DEFAULT_MIN_REJECTS_TO_FAIL,
        **kwargs: Any,
    ):
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.operation = operation
        self.phase_task_ids = list(phase_task_ids)
        self.apply_task_id = apply_task_id  # a phase that runs only when a held plan was approved
        self.fail_on_partial = fail_on_partial
        self.max_reject_ratio = max_reject_ratio
        self.min_rejects_to_fail = min_rejects_to_fail

    def run(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        counts, problems, held_by = SyncCounts(), [], None
        for task_id in self.phase_task_ids:
            result = ti.xcom_pull(task_ids=task_id)
            if isinstance(result, dict) and result.get(HELD_PLAN):
                held_by = task_id  # wrote nothing: its plan waited for approval, applied by apply_task_id
            elif isinstance(result, dict):
                counts = counts.merge(SyncCounts.from_dict(result))
            elif task_id != self.apply_task_id:
                problems.append(f"{task_id} did not finish")
        if held_by and not isinstance(ti.xcom_pull(task_ids=self.apply_task_id), dict):
            problems.append(f"{held_by} planned a mass change that was not applied (not approved, or the apply "
                            "failed): nothing of it was written")
        # Every task before this one, not only the direct upstream: in the bidirectional DAG a
        # failed pull leaves push_changed upstream_failed, and the cause is the pull's.
        for task_id in sorted(self.get_flat_relative_ids(upstream=True)):
            error = ti.xcom_pull(task_ids=task_id, key="error")
            if error:
                problems.append(f"{task_id}: {error}")

        dry_run = _as_bool(self.dry_run)
        limit, minimum = float(self.max_reject_ratio), int(self.min_rejects_to_fail)
        fail_on_partial = _as_bool(self.fail_on_partial)
        if too_many_rejects(counts, max_reject_ratio=limit, min_rejects=minimum):
            problems.append(
                f"{rejected(counts)} of {counts.considered} records ({reject_ratio(counts):.1%}) were skipped or "
                f"refused, more than max_reject_ratio {limit:.1%} (and at least min_rejects_to_fail {minimum})"
            )
        elif fail_on_partial and is_partial(counts):
            problems.append(f"fail_on_partial is set: {rejected(counts)} of {counts.considered} records were skipped "
                            "or refused" + (f", {counts.gave_up} given up" if counts.gave_up else ""))
        status = run_status(counts, phase_failed=bool(problems), max_reject_ratio=limit, min_rejects=minimum,
                            fail_on_partial=fail_on_partial)
        line = summary_line(self.operation, counts, status=status, dry_run=dry_run)
        message = "; ".join([line, detail_line(counts), *problems, *counts.reasons])
        self.log.info("Counts: %s", detail_line(counts))
        for reason in counts.reasons:
            self.log.warning("Problem: %s", reason)
        for problem in problems:
            self.log.error("Failed: %s", problem)
        self.log.info("Status: %s", status)
        if not dry_run:
            self._write_run(context, counts, status, message)
        self.log.info("%s", line)

        summary = {"operation": self.operation, "status": status, "message": message, "dry_run": dry_run,
                   **{k: v for k, v in counts.to_dict().items() if k not in ("reasons", "considered")}}
        if status == FAILED:
            # A failed task has no return value: the failure notification reads the summary here.
            ti.xcom_push(key=SUMMARY_XCOM_KEY, value=summary)
            raise AirflowFailException(message)
        return summary

    def _send_metrics(self, context: Any, seconds: float, failed: bool) -> None:
        """The run's outcome, once (its counts were counted by the tasks that made them):
        ``crmsync.run.<status>`` with the DAG and the operation as tags."""
        summary = self._counts or {}
        status = summary.get("status") or (FAILED if failed else "unknown")
        metrics.run_finished(status=status, tags={"dag_id": context["dag"].dag_id, "operation": self.operation})

    def _write_run(self, context: Any, counts: SyncCounts, status: str, message: str) -> None:
        dag_run = context.get("dag_run")
        started_at = getattr(dag_run, "start_date", None) or datetime.now(timezone.utc)
        row = {k: v for k, v in counts.to_dict().items() if k not in ("reasons", "considered")}
        with self.open_store(context) as store:
            store.write_run({**row, "operation": self.operation, "status": status, "message": message,
                             "started_at": started_at, "finished_at": datetime.now(timezone.utc)})
