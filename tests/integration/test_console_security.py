"""The console's cross-site guard (crmsync.console.security.same_origin) on real requests: a
state-changing call with the login cookie must come from the console's own origin, in JSON."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from crmsync.console.security import same_origin


def request(method="POST", *, origin=None, cookie=True, bearer=False, content_type="application/json",
            host="airflow.example:8080"):
    headers = [(b"host", host.encode())]
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", b"_token=abc"))
    if bearer:
        headers.append((b"authorization", b"Bearer abc"))
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    return Request({"type": "http", "method": method, "scheme": "http", "path": "/crmsync/api/trigger",
                    "headers": headers, "query_string": b"", "server": ("airflow.example", 8080)})


def refused(req) -> int:
    with pytest.raises(HTTPException) as caught:
        same_origin(req)
    return caught.value.status_code


def test_same_origin_passes_other_sites_do_not(monkeypatch):
    same_origin(request(origin="http://airflow.example:8080"))  # the console's own page
    same_origin(request("GET", origin="https://evil.example", content_type=None))  # reads change nothing
    same_origin(request(origin=None, cookie=False, bearer=True))  # a script with a token, not a browser
    assert refused(request(origin="https://evil.example")) == 403
    assert refused(request(origin="http://airflow.example:8080.evil.example")) == 403
    assert refused(request(origin="null")) == 403  # a sandboxed frame or a file:// page
    assert refused(request(origin=None)) == 403  # a browser POST always has one
    assert refused(request(origin="http://airflow.example:8080", content_type="text/plain")) == 415
    assert refused(request(origin="http://airflow.example:8080",
                           content_type="application/x-www-form-urlencoded")) == 415  # a cross-site form's type
    monkeypatch.setenv("CRMSYNC_CONSOLE_ALLOWED_ORIGINS", "https://airflow.company.example")
    same_origin(request(origin="https://airflow.company.example", host="10.0.0.5:8080"))  # behind a proxy
