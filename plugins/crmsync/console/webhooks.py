"""The receiver of SUMIT's triggers: ``POST /crmsync/webhooks/sumit/<token>`` on the api-server.

SUMIT cannot log in to Airflow, and documents no signature: the secret token in the URL is
the receiver's only credential (connection ``crmsync_webhook``, crmsync.airflow_side.webhook_settings). It
is compared in constant time and never logged: the request's path is rewritten to
``.../sumit/***`` (``HideToken``, before the console app routes it, whatever the method) so
Airflow's access log never reads it, and the token is registered with Airflow's secrets
masker. A wrong token gets 404, whatever the method, and nothing is read or stored.

A body over 1 MB is refused (413) unread past that size. A readable body's triggers are
stored in crm_inbox and committed before the answer (202); one the receiver cannot read is
refused (400) and recorded as rejected with the reason. Then, unless a run of
crm_apply_crm_events is already queued, one is asked for: a burst of triggers makes one run
(or a few), and SUMIT never waits on a sync.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from crmsync.airflow_side import metrics, webhook_settings
from crmsync.airflow_side.webhook_settings import WebhookSettings
from crmsync.console import db
from crmsync.console.answers import answer
from crmsync.core.errors import ConfigurationError
from crmsync.core.triggers import MAX_BODY_BYTES, MalformedTrigger, excerpt, parse_body
from crmsync.db import inbox

log = logging.getLogger(__name__)
router = APIRouter()
APPLY_DAG = "crm_apply_crm_events"
TRIGGERED_BY = "SUMIT trigger"  # the run's triggering user in Airflow
_SETTINGS_TTL = 30.0  # seconds a token is trusted before the connection is read again (rotation)


class _Settings:
    """The connection, read at most every 30 s (a burst of triggers reads it once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: WebhookSettings | None = None
        self._error: str | None = None
        self._read_at = float("-inf")

    def get(self) -> WebhookSettings | None:
        with self._lock:
            if time.monotonic() - self._read_at > _SETTINGS_TTL:
                self._value, self._error = _read_settings()
                self._read_at = time.monotonic()
                if self._error:
                    log.warning("crmsync's trigger receiver refuses every trigger: %s", self._error)
            return self._value

    def forget(self) -> None:
        with self._lock:
            self._read_at = float("-inf")


def _read_settings() -> tuple[WebhookSettings | None, str | None]:
    from airflow.sdk import BaseHook

    name = webhook_settings.conn_id()
    try:
        conn = BaseHook.get_connection(name)
    except Exception:  # not defined: the receiver is off
        return None, f"Airflow connection {name!r} is not defined"
    try:
        settings = WebhookSettings.from_connection(name, password=conn.password, host=conn.host,
                                                   extra=conn.extra_dejson)
    except ConfigurationError as exc:
        return None, str(exc)
    _mask(settings.token)
    return settings, None


SETTINGS = _Settings()


def _mask(secret: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover
        return
    mask_secret(secret)


RECEIVER_PATH = "/webhooks/sumit/"
TOKEN_SCOPE_KEY = "crmsync.webhook_token"


class HideToken:
    """ASGI middleware on the console app: the token out of the request's path before anything
    routes or logs it, for every method and every path under the receiver's (a GET, a path with
    a segment more). The token moves to the scope (``TOKEN_SCOPE_KEY``), the path reads
    ``.../webhooks/sumit/***``; Airflow's access log, which runs after the answer with this same
    scope, writes that."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            head, sep, token = path.partition(RECEIVER_PATH)
            if sep:
                scope[TOKEN_SCOPE_KEY] = token
                scope["path"] = f"{head}{sep}***"
                scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def _token(request: Request) -> str:
    return request.scope.get(TOKEN_SCOPE_KEY, "")


def _right_token(settings: WebhookSettings | None, token: str) -> bool:
    return settings is not None and hmac.compare_digest(token.encode(), settings.token.encode())


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413,
                            f"A trigger body is at most {MAX_BODY_BYTES:,} bytes; this one is {int(declared):,}.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413,
                                f"A trigger body is at most {MAX_BODY_BYTES:,} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


class Received(BaseModel):
    stored: int
    collapsed: int
    run_requested: bool



# The body as SUMIT sends it (read by crmsync.core.triggers.parse_body, not by a model: the
# description is for readers and the suite's fuzzer).
_TRIGGER = {"oneOf": [
    # EntityID is required and an id; Type and Folder are read when they are text or a number and
    # ignored otherwise (an unknown Type is a "change"): SUMIT's shapes vary, a trigger is never lost over them.
    {"type": "object", "properties": {"EntityID": {"type": ["integer", "string"]}, "Type": {}, "Folder": {}},
     "required": ["EntityID"]},
    {"type": "array", "minItems": 3, "maxItems": 4},
    {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": 1000},
]}
RECEIVER_DESCRIPTION = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": _TRIGGER},
    "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {"json": {"type": "string"}},
                                                     "required": ["json"]}},
}}}


@router.post(RECEIVER_PATH + "{token}", status_code=status.HTTP_202_ACCEPTED, openapi_extra=RECEIVER_DESCRIPTION,
             responses={202: answer("Stored; a run of crm_apply_crm_events asked for", Received),
                        400: answer("Not a trigger crmsync can read: recorded as rejected, not applied"),
                        404: answer("A wrong token, or the receiver is off"),
                        413: answer("A body over 1,000,000 bytes"),
                        503: answer("The customers database is out of reach: SUMIT should send it again")})
async def receive_trigger(request: Request, token: str) -> JSONResponse:
    # `token` is "***" (HideToken); the real one is in the scope
    settings = await run_in_threadpool(SETTINGS.get)
    if not _right_token(settings, _token(request)):
        metrics.receiver("refused", reason="token")
        raise _not_found()
    metrics.receiver("received")
    try:
        body = await _body(request)
    except HTTPException:
        metrics.receiver("refused", reason="too_large")
        raise
    try:
        events = parse_body(body, request.headers.get("content-type"))
    except MalformedTrigger as exc:
        await run_in_threadpool(_store_rejected, str(exc), excerpt(body))
        metrics.receiver("refused", reason="malformed")
        log.warning("crmsync: refused a SUMIT trigger: %s", exc)
        return JSONResponse({"detail": f"Not a trigger crmsync can read: {exc}. It was recorded, not applied."},
                            status_code=status.HTTP_400_BAD_REQUEST)
    try:
        new, collapsed, pending = await run_in_threadpool(_store, events)
    except Exception as exc:  # the customers database: SUMIT should try again later
        metrics.receiver("refused", reason="database")
        log.error("crmsync: could not store a SUMIT trigger: %s", exc)
        return JSONResponse({"detail": "The trigger could not be stored; try again later."},
                            status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    metrics.receiver("stored", new)
    metrics.receiver("collapsed", collapsed)
    metrics.receiver_inbox(pending)
    run_id = await run_in_threadpool(request_apply_run)
    return JSONResponse({"stored": new, "collapsed": collapsed, "run_requested": run_id is not None},
                        status_code=status.HTTP_202_ACCEPTED)


@router.api_route(RECEIVER_PATH + "{token}", methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"],
                  include_in_schema=False)
async def other_methods(request: Request, token: str) -> JSONResponse:
    """A wrong token is a 404 whatever the method; the right one with another method than POST a 405."""
    settings = await run_in_threadpool(SETTINGS.get)
    if not _right_token(settings, _token(request)):
        raise _not_found()
    return JSONResponse({"detail": "Method Not Allowed"}, status_code=status.HTTP_405_METHOD_NOT_ALLOWED,
                        headers={"Allow": "POST"})


def _store(events: list[Any]) -> tuple[int, int, int]:
    """Store the triggers: (new rows, collapsed into pending ones, the inbox's pending depth)."""
    conn = db.connect()
    try:
        new, collapsed = inbox.receive(conn, events)
        return new, collapsed, inbox.pending_depth(conn)
    finally:
        conn.close()


def _store_rejected(reason: str, body_start: str) -> None:
    try:
        conn = db.connect()
        try:
            inbox.reject(conn, reason, body_start)
        finally:
            conn.close()
    except Exception as exc:  # recording a refusal must not turn it into a 500
        log.error("crmsync: could not record a refused SUMIT trigger: %s", exc)


def request_apply_run() -> str | None:
    """Queue a run of crm_apply_crm_events unless one is queued already; its run id, if made.

    A run that is running may have read the inbox before these triggers came, so only a queued
    one (which has not started) covers them. Failing to ask is logged, not raised: the
    triggers are stored and the next trigger, or a manual run, applies them.
    """
    try:
        from sqlalchemy import func, select

        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.models import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState
        from airflow.utils.types import DagRunTriggeredByType

        with create_session() as session:
            queued = session.scalar(select(func.count()).select_from(DagRun).where(
                DagRun.dag_id == APPLY_DAG, DagRun.state == DagRunState.QUEUED))
        if queued:
            return None
        run = trigger_dag(APPLY_DAG, triggered_by=DagRunTriggeredByType.REST_API, triggering_user_name=TRIGGERED_BY,
                          conf={}, note="Asked for by crmsync's receiver of SUMIT triggers")
        return run.run_id if run is not None else None
    except Exception as exc:
        log.warning("crmsync: stored the trigger but could not ask for a run of %s: %s", APPLY_DAG, exc)
        return None
