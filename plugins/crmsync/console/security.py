"""Who may use the console: Airflow's own login, Airflow's own permissions, and no cross-site calls.

Airflow does not authenticate a plugin's FastAPI app: these dependencies do. The user comes
from the api-server's token, as for the rest of Airflow's UI and REST API (the ``_token``
cookie the UI sets at login, or an ``Authorization: Bearer`` header), through
``airflow.api_fastapi.core_api.security.get_user``; permissions are the auth manager's
(``is_authorized_dag``), whichever manager the deployment runs:

- reading any page needs read access (GET) to every crmsync DAG;
- an action needs permission to create runs of the DAG it starts (POST on the DAG's runs).

A state-changing call made with the login cookie must come from the console's own origin:
its ``Origin`` header must be the api-server's (browsers always send it with a POST), and
its body must be JSON (a cross-site form cannot send that without a CORS preflight, which the
console never allows). A call with a bearer token and no cookie (a script) is not a browser's
and needs no Origin.
"""

from __future__ import annotations

import os
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, status

from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import get_user

from crmsync.console.outcome import DAG_IDS

ALLOWED_ORIGINS_ENV = "CRMSYNC_CONSOLE_ALLOWED_ORIGINS"  # extra origins, comma-separated (a proxy's)


def _auth_manager():
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def can_read(user: BaseUser) -> bool:
    manager = _auth_manager()
    return all(manager.is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user)
               for dag_id in DAG_IDS)


def can_trigger(user: BaseUser, dag_id: str) -> bool:
    return _auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                             details=DagDetails(id=dag_id), user=user)


def reader(user: Annotated[BaseUser, Depends(get_user)]) -> BaseUser:
    """A logged-in user who may read the crmsync DAGs (else 403; no login: 401)."""
    if not can_read(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "You may not read the crmsync DAGs; ask an Airflow admin for read access to them.")
    return user


ReaderDep = Annotated[BaseUser, Depends(reader)]


def require_trigger(user: BaseUser, dag_id: str) -> None:
    if not can_trigger(user, dag_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"You may not start runs of {dag_id}; your Airflow role can only read.")


def same_origin(request: Request) -> None:
    """Refuse a state-changing call from another site (CSRF), before anything else runs."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Send the request body as application/json.")
    origin = request.headers.get("origin")
    uses_cookie = COOKIE_NAME_JWT_TOKEN in request.cookies
    bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
    if origin is None:
        if uses_cookie and not bearer:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Refused: a browser call without an Origin header.")
        return
    if origin.rstrip("/") not in _own_origins(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Refused: this call came from another site.")


def _own_origins(request: Request) -> set[str]:
    host = request.headers.get("host", "")
    origins = {f"{request.url.scheme}://{host}"}
    forwarded_proto = request.headers.get("x-forwarded-proto")
    if forwarded_proto:
        origins.add(f"{forwarded_proto}://{host}")
    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback="") or ""
    if base_url:
        parts = urlsplit(base_url)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    origins.update(o.strip().rstrip("/") for o in os.environ.get(ALLOWED_ORIGINS_ENV, "").split(",") if o.strip())
    return origins


def user_token(request: Request) -> str:
    """The caller's own token, to call Airflow's REST API on their behalf (never logged)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    token = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated")
    return token
