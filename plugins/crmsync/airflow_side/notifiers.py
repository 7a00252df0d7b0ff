"""Telling people how a sync run went: a log line always, e-mail and a JSON-lines file when set.

``CrmSyncNotifier`` is an Airflow notifier (``BaseNotifier``) wired in every crmsync DAG:

- on the ``report`` task, ``on_success_callback`` and ``on_failure_callback``: the report task
  is where the run's verdict is made, and its summary (counts, status, message) is what a
  notification carries. A green run whose status is ``warning`` (some records skipped or
  refused) notifies as a warning, not as a success;
- on the DAG, ``on_failure_callback``: a run that failed without the report task failing
  (a run timeout, a deadlock) still notifies; a run whose report task failed was already
  notified by that task and is not notified twice.

Each notification has a type (``success``, ``warning``, ``failure``), a title (the DAG id and
the guide's summary line, e.g. ``crm_bidirectional_sync: Bidirectional sync completed.
Pulled: 120, Pushed: 8 (Failed: 2)``) and a body (the run's message: counts and first
reasons, then the run id). Messages are built by crmsync and never hold the API key; the
notifier still redacts the SUMIT connection's password from everything it sends.

Channels, read when the notification is sent (the worker's or DAG processor's environment):

- always: one log line in the task's log (warning and failure at WARNING/ERROR level);
- ``CRMSYNC_NOTIFY_EMAIL``: comma-separated addresses; sends through the SMTP provider's
  ``SmtpNotifier`` using the connection ``CRMSYNC_NOTIFY_SMTP_CONN_ID`` (default
  ``smtp_default``; its "From email" field, or ``CRMSYNC_NOTIFY_FROM``, is the sender);
- ``CRMSYNC_NOTIFY_FILE``: a path; one JSON object per notification is appended (for a log
  shipper, or a test);
- ``CRMSYNC_NOTIFY_ON``: which types go to e-mail and the file (default ``warning,failure``;
  add ``success`` to hear of every run). The log line is written for every type.
"""

from __future__ import annotations

import html
import json
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

from airflow.sdk import BaseNotifier

from crmsync.airflow_side import deployment
from crmsync.core.summary import FAILED, WARNING
from crmsync.sumit.redact import redact

log = logging.getLogger(__name__)

SUCCESS_TYPE, WARNING_TYPE, FAILURE_TYPE = "success", "warning", "failure"
NOTIFY_EMAIL_ENV = "CRMSYNC_NOTIFY_EMAIL"
NOTIFY_FROM_ENV = "CRMSYNC_NOTIFY_FROM"
NOTIFY_SMTP_CONN_ENV = "CRMSYNC_NOTIFY_SMTP_CONN_ID"
NOTIFY_FILE_ENV = "CRMSYNC_NOTIFY_FILE"
NOTIFY_ON_ENV = "CRMSYNC_NOTIFY_ON"
DEFAULT_NOTIFY_ON = (WARNING_TYPE, FAILURE_TYPE)
SUMMARY_XCOM_KEY = "summary"  # what the report task pushes before it fails the run


@dataclass(frozen=True)
class Notification:
    type: str
    title: str
    body: str
    dag_id: str
    run_id: str


class CrmSyncNotifier(BaseNotifier):
    """Notify how a crmsync run went (see the module docstring for wiring and channels)."""

    def __init__(self, *, report_task_id: str = "report", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report_task_id = report_task_id

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        # Nothing to render (no template fields), and in `airflow dags test` a DAG callback's
        # context holds a serialized DAG that cannot build a Jinja environment.
        if self.template_fields:
            super().render_template_fields(context, jinja_env)

    def notify(self, context: Any) -> None:
        notification = self.compose(context)
        if notification is None:
            return
        secrets = _secrets()
        notification = Notification(**{k: redact(v, secrets) for k, v in asdict(notification).items()})
        level = {SUCCESS_TYPE: logging.INFO, WARNING_TYPE: logging.WARNING}.get(notification.type, logging.ERROR)
        self.log.log(level, "crmsync notification (%s): %s\n%s", notification.type, notification.title,
                     notification.body)
        if notification.type not in _notify_on():
            return
        if os.environ.get(NOTIFY_FILE_ENV, "").strip():
            _append_to_file(os.environ[NOTIFY_FILE_ENV].strip(), notification)
        recipients = [a.strip() for a in os.environ.get(NOTIFY_EMAIL_ENV, "").split(",") if a.strip()]
        if recipients:
            _send_email(recipients, notification, context)

    # -- what to say ---------------------------------------------------------------------------

    def compose(self, context: Any) -> Notification | None:
        ti = context.get("ti")
        dag = context.get("dag")
        dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "") or ""
        run_id = str(context.get("run_id") or getattr(ti, "run_id", "") or "")
        is_report = ti is not None and getattr(ti, "task_id", None) == self.report_task_id

        if "reason" in context:
            # A DAG-level callback: the run failed (or, if wired so, succeeded).
            if is_report:
                return None  # the report task's own callback already said how the run went
            reason = context.get("reason") or "failed"
            last = getattr(ti, "task_id", None)
            body = (f"The run failed ({reason}) before the report task could give its verdict"
                    + (f"; last failed task: {last}" if last else "") + ".")
            return Notification(FAILURE_TYPE, f"{dag_id}: run failed ({reason})", _with_run(body, run_id),
                                dag_id, run_id)

        summary = _summary(ti) if is_report else None
        error = context.get("exception")
        failed = error is not None
        if summary:
            message = str(summary.get("message") or "")
            status = summary.get("status")
        else:
            message, status = (str(error) if error is not None else ""), (FAILED if failed else None)
        line = message.split("; ", 1)[0] if message else ""
        if failed:
            kind = FAILURE_TYPE
            if not line:
                line = f"{getattr(ti, 'task_id', 'a task')} failed"
        else:
            kind = WARNING_TYPE if status == WARNING else SUCCESS_TYPE if status != FAILED else FAILURE_TYPE
        return Notification(kind, f"{dag_id}: {line}" if line else dag_id, _with_run(message, run_id), dag_id, run_id)


def _summary(ti: Any) -> dict[str, Any] | None:
    """The report task's summary: pushed under ``summary`` when it fails, its return value otherwise."""
    for key in (SUMMARY_XCOM_KEY, "return_value"):
        try:
            value = ti.xcom_pull(task_ids=ti.task_id, key=key)
        except Exception as exc:  # a notification must not fail for want of the summary
            log.warning("crmsync notifier could not read the report's %s XCom: %s", key, exc)
            continue
        if isinstance(value, dict):
            return value
    return None


def _with_run(message: str, run_id: str) -> str:
    return "\n".join(part for part in (message.replace("; ", "\n") if message else "", f"DAG run: {run_id}") if part)


def _notify_on() -> set[str]:
    text = os.environ.get(NOTIFY_ON_ENV, "")
    chosen = {part.strip().lower() for part in text.split(",") if part.strip()}
    return chosen or set(DEFAULT_NOTIFY_ON)


def _secrets() -> list[str]:
    """The SUMIT API key, to be removed from anything sent (best effort: messages hold none)."""
    try:
        from airflow.sdk import BaseHook

        password = BaseHook.get_connection(deployment.SUMIT_CONN_ID).password
    except Exception:
        return []
    # Like Airflow's masker, ignore trivially short values: redacting "1" would garble every number.
    return [password] if password and len(password) >= 5 else []


def _append_to_file(path: str, notification: Notification) -> None:
    with open(path, "a", encoding="utf-8") as sink:
        sink.write(json.dumps(asdict(notification), ensure_ascii=False) + "\n")


def _send_email(recipients: list[str], notification: Notification, context: Any) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    smtp = SmtpNotifier(
        to=recipients,
        from_email=os.environ.get(NOTIFY_FROM_ENV, "").strip() or None,
        subject=f"[crmsync {notification.type}] {notification.title}",
        html_content=f"<pre>{html.escape(notification.body)}</pre>",
        smtp_conn_id=os.environ.get(NOTIFY_SMTP_CONN_ENV, "").strip() or None,
    )
    # notify(), not smtp(context): calling the notifier would render subject and body as Jinja
    # templates, and they carry CRM data ("{{" in a customer name must stay text).
    smtp.notify(context)
