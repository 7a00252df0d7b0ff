"""Airflow's REST API, called on the console user's behalf.

A console action is an ordinary DAG run made through ``POST /api/v2/dags/{dag_id}/dagRuns``
with the user's own token: Airflow checks the permission again, validates ``conf`` against
the DAG's Params, and records who triggered it, exactly as for a run made from its own form.
The API is reached at the api-server's own address (``CRMSYNC_CONSOLE_AIRFLOW_URL``, else
``[api] base_url``'s path on ``http://127.0.0.1:[api] port``), never at an address taken from
the request, so the token cannot be sent elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

AIRFLOW_URL_ENV = "CRMSYNC_CONSOLE_AIRFLOW_URL"
TIMEOUT_SECONDS = 30.0
BAD_GATEWAY = 502


@dataclass
class ApiAnswer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def detail(self) -> str:
        """Airflow's own words for a refusal (a Param that failed validation, say)."""
        body = self.body
        if isinstance(body, dict):
            detail = body.get("detail", body)
            if isinstance(detail, list):  # FastAPI's validation errors
                return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
            return str(detail)
        return str(body)[:500]


def airflow_url() -> str:
    configured = os.environ.get(AIRFLOW_URL_ENV, "").strip()
    if configured:
        return configured.rstrip("/")
    from airflow.configuration import conf

    base_path = urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    port = conf.getint("api", "port", fallback=8080)
    return f"http://127.0.0.1:{port}{base_path}"


def _call(method: str, path: str, token: str, *, json: Any = None, referer: str | None = None) -> ApiAnswer:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if referer:
        headers["Referer"] = referer  # Airflow records a run with a Referer as triggered from the UI
    url = airflow_url()
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
            response = client.request(method, url + path, headers=headers, json=json)
    except httpx.HTTPError as exc:  # the console's own api-server unreachable: a 502 in words, not a 500
        return ApiAnswer(BAD_GATEWAY, {"detail": f"Airflow's REST API at {url} did not answer ({type(exc).__name__}); "
                                                 f"set {AIRFLOW_URL_ENV} to the api-server's own address"})
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code >= 500:  # Airflow's own failure, passed on as a gateway's
        return ApiAnswer(BAD_GATEWAY, {"detail": f"Airflow's REST API failed ({response.status_code}): "
                                                 f"{ApiAnswer(response.status_code, body).detail()}"})
    return ApiAnswer(response.status_code, body)


def trigger(dag_id: str, conf: dict[str, Any], token: str, *, note: str | None = None,
            referer: str | None = None) -> ApiAnswer:
    body: dict[str, Any] = {"logical_date": None, "conf": conf}
    if note:
        body["note"] = note
    return _call("POST", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", token, json=body, referer=referer)


def unpause(dag_id: str, token: str) -> ApiAnswer:
    return _call("PATCH", f"/api/v2/dags/{quote(dag_id, safe='')}", token, json={"is_paused": False})


def dag_run(dag_id: str, run_id: str, token: str) -> ApiAnswer:
    return _call("GET", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}", token)


def dag(dag_id: str, token: str) -> ApiAnswer:
    return _call("GET", f"/api/v2/dags/{quote(dag_id, safe='')}", token)
