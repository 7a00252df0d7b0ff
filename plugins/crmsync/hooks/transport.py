"""One POST to SUMIT through the hook's requests session, without requests' per-request work.

``Session.post`` spends most of a push's client CPU on what is the same for every call to
SUMIT: it merges the environment's proxies and CA bundle (reading ``os.environ`` and parsing
``no_proxy`` each time), prepares cookies, auth and hooks, and walks redirects. With 10,000
pushes that is 1 ms of CPU each, and the pushers share one interpreter (docs/performance.md).

:class:`Poster` does that merging once, exactly as ``Session.request`` does it for SUMIT's
URL (the connection's ``proxies``, ``verify`` and ``cert``, else the environment's when
``trust_env``). The session's own transport adapter (``HTTPAdapter``) then chooses, once per
endpoint, what ``HTTPAdapter.send`` chooses for every request: the connection pool (direct,
or through the proxy), its TLS settings and the URL the request line carries (a path, or the
whole URL for a plain-HTTP proxy). Each POST goes to that pool as ``send`` would send it, and
urllib3's errors become requests' exceptions as ``send`` makes them; the answer is a
``requests.Response`` whose body requests reads. Same pool, keep-alive, TLS, proxies and
exceptions as ``Session.post``, for about half the client CPU of a push. An adapter of
another kind mounted on the session gets every request through its own ``send``.
What it leaves out: cookies (SUMIT sets none crmsync needs), auth (the credentials travel in
the body), and redirects (SUMIT's API answers, it does not redirect; a 3xx is an error the
hook reports, and a request body holding the API key is never sent on to another address).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import msgspec
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import exceptions as urllib3_exceptions
from urllib3.exceptions import (ClosedPoolError, ConnectTimeoutError, LocationValueError, MaxRetryError,
                                NewConnectionError, ProtocolError, ReadTimeoutError, ResponseError)
from urllib3.util import Timeout

from crmsync.core.errors import SumitProtocolError


class Poster:
    def __init__(self, session: requests.Session, base_url: str) -> None:
        merged = session.merge_environment_settings(base_url, session.proxies, None, session.verify, session.cert)
        self.adapter = session.get_adapter(base_url)
        self.headers = dict(session.headers)
        self.options: dict[str, Any] = {"verify": merged["verify"], "cert": merged["cert"],
                                        "proxies": merged["proxies"]}
        # HTTPAdapter's choices, made once per URL (requests 2.32.2 and later choose a pool this way); an
        # adapter that sends or builds its answers its own way is left to do so.
        kind = type(self.adapter)
        self._direct = (issubclass(kind, HTTPAdapter) and kind.send is HTTPAdapter.send
                        and kind.build_response is HTTPAdapter.build_response
                        and hasattr(kind, "get_connection_with_tls_context"))
        self._routes: dict[str, _Route] = {}
        self._timeouts: dict[tuple[float, float], Timeout] = {}

    def post(self, url: str, data: bytes, timeout: tuple[float, float]) -> requests.Response:
        """The answer, its body read (a connection lost while reading raises here, as from Session.post)."""
        if not self._direct:
            request = requests.PreparedRequest()
            request.prepare(method="POST", url=url, headers=self.headers, data=data)
            response = self.adapter.send(request, stream=False, timeout=timeout, **self.options)
        else:
            response = self._send(self._route(url), data, timeout)
        response.content  # noqa: B018 - read now, inside the caller's handling of transport errors
        return response

    def _route(self, url: str) -> _Route:
        """The prepared request (headers and URL as requests prepares them), the pool and the
        request line's URL for ``url``, as HTTPAdapter.send chooses them (its errors raised as
        there: a CA bundle that cannot be read is an OSError); chosen again once the pool is closed."""
        route = self._routes.get(url)
        if route is not None and route.pool.pool is not None:  # pool.pool is None once the pool is closed
            return route
        request = requests.PreparedRequest()
        request.prepare(method="POST", url=url, headers=self.headers, data=b"")
        verify, cert, proxies = self.options["verify"], self.options["cert"], self.options["proxies"]
        adapter = self.adapter
        try:
            pool = adapter.get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        except LocationValueError as exc:
            raise requests.exceptions.InvalidURL(exc, request=request)
        adapter.cert_verify(pool, request.url, verify, cert)
        headers = {name: value for name, value in request.headers.items() if name.lower() != "content-length"}
        route = self._routes[url] = _Route(request, pool, adapter.request_url(request, proxies), headers)
        return route

    def _send(self, route: _Route, data: bytes, timeout: tuple[float, float]) -> requests.Response:
        """HTTPAdapter.send for one POST along ``route``: the same call to the pool, the same errors."""
        request = route.request
        resolved = self._timeouts.get(timeout)
        if resolved is None:
            resolved = self._timeouts[timeout] = Timeout(connect=timeout[0], read=timeout[1])
        headers = route.headers.copy()
        headers["Content-Length"] = str(len(data))
        try:
            resp = route.pool.urlopen(method="POST", url=route.target, body=data, headers=headers, redirect=False,
                                      assert_same_host=False, preload_content=False, decode_content=False,
                                      retries=self.adapter.max_retries, timeout=resolved, chunked=False)
        except (ProtocolError, OSError) as err:
            raise requests.ConnectionError(err, request=request)
        except MaxRetryError as e:
            if isinstance(e.reason, ConnectTimeoutError) and not isinstance(e.reason, NewConnectionError):
                raise requests.ConnectTimeout(e, request=request)
            if isinstance(e.reason, ResponseError):
                raise requests.exceptions.RetryError(e, request=request)
            if isinstance(e.reason, urllib3_exceptions.ProxyError):
                raise requests.exceptions.ProxyError(e, request=request)
            if isinstance(e.reason, urllib3_exceptions.SSLError):
                raise requests.exceptions.SSLError(e, request=request)
            raise requests.ConnectionError(e, request=request)
        except ClosedPoolError as e:
            raise requests.ConnectionError(e, request=request)
        except urllib3_exceptions.ProxyError as e:
            raise requests.exceptions.ProxyError(e)
        except urllib3_exceptions.SSLError as e:
            raise requests.exceptions.SSLError(e, request=request)
        except ReadTimeoutError as e:
            raise requests.ReadTimeout(e, request=request)
        except urllib3_exceptions.InvalidHeader as e:
            raise requests.exceptions.InvalidHeader(e, request=request)
        # HTTPAdapter.build_response, but for the cookies (see above).
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = request.url  # type: ignore[assignment]
        response.request = request
        response.connection = self.adapter  # type: ignore[attr-defined]
        return response


class _Route(NamedTuple):
    request: requests.PreparedRequest  # as requests prepares a POST to this URL (for errors and the answer)
    pool: Any  # urllib3's connection pool HTTPAdapter chose
    target: str  # the URL the request line carries
    headers: dict[str, str]  # the session's, as prepared, without the body's length


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def decode_json(response: requests.Response) -> Any:
    """The answer's JSON. msgspec decodes a 1,000-customer page twice as fast as ``json``; what
    it refuses (NaN, a lone surrogate, a byte-order mark, a body in another charset) goes to
    requests' decoder, so every answer decodes exactly as it always did, or fails the same way."""
    if _utf8(response):
        try:
            return msgspec.json.decode(response.content)
        except (msgspec.MsgspecError, ValueError):
            pass
    return response.json()


class _Envelope(msgspec.Struct):
    Status: Any = msgspec.UNSET
    UserErrorMessage: Any = None
    TechnicalErrorDetails: Any = None


def decode_envelope(response: requests.Response) -> dict[str, Any] | None:
    """Only the envelope of an answer that is a UTF-8 JSON object (msgspec reads past the rest
    without building it), for :func:`decode_body` to decode in full later; None when msgspec
    cannot: the answer is then decoded in full at once, as :func:`decode_json` does."""
    if not _utf8(response):
        return None
    try:
        envelope = msgspec.json.decode(response.content, type=_Envelope)
    except (msgspec.MsgspecError, ValueError):
        return None
    fields = {"Status": envelope.Status, "UserErrorMessage": envelope.UserErrorMessage,
              "TechnicalErrorDetails": envelope.TechnicalErrorDetails}
    return {name: value for name, value in fields.items() if value is not msgspec.UNSET}


def decode_answer(response: requests.Response, *, envelope_only: bool = False) -> tuple[Any, bool]:
    """(the answer to judge, whether it is only the envelope); with ``envelope_only`` just the
    envelope when it can be read alone, else the whole answer. ValueError: not JSON."""
    if envelope_only:
        envelope = decode_envelope(response)
        if envelope is not None:
            return envelope, True
    return decode_json(response), False


def decode_body(answer: Any, endpoint: str) -> Any:
    """An answer ``SumitHook.call(raw=True)`` returned, decoded (it may be decoded already)."""
    if not isinstance(answer, bytes):
        return answer
    try:
        return msgspec.json.decode(answer)
    except (msgspec.MsgspecError, ValueError):
        pass
    try:
        return json.loads(answer.decode("utf-8"))  # what msgspec refuses: a lone surrogate, NaN
    except ValueError:
        raise SumitProtocolError(f"SUMIT {endpoint} answered with JSON that cannot be decoded.",
                                 endpoint=endpoint) from None


def _utf8(response: requests.Response) -> bool:
    return (response.encoding or "utf-8").lower().replace("-", "") == "utf8"
