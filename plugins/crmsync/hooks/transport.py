"""One POST to SUMIT through the hook's requests session, without requests' per-request work.

``Session.post`` spends most of a push's client CPU on what is the same for every call to
SUMIT: it merges the environment's proxies and CA bundle (reading ``os.environ`` and parsing
``no_proxy`` each time), prepares cookies, auth and hooks, and walks redirects. With 10,000
pushes that is 1 ms of CPU each, and the pushers share one interpreter (docs/performance.md).

:class:`Poster` does that merging once, exactly as ``Session.request`` does it for SUMIT's
URL (the connection's ``proxies``, ``verify`` and ``cert``, else the environment's when
``trust_env``), and then sends each request through the session's own transport adapter:
the same connection pool, TLS settings, keep-alive and exceptions as ``Session.post``.
What it leaves out: cookies (SUMIT sets none crmsync needs), auth (the credentials travel in
the body), and redirects (SUMIT's API answers, it does not redirect; a 3xx is an error the
hook reports, and a request body holding the API key is never sent on to another address).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import requests

from crmsync.core.errors import SumitProtocolError


class Poster:
    def __init__(self, session: requests.Session, base_url: str) -> None:
        merged = session.merge_environment_settings(base_url, session.proxies, None, session.verify, session.cert)
        self.adapter = session.get_adapter(base_url)
        self.headers = dict(session.headers)
        self.options: dict[str, Any] = {"verify": merged["verify"], "cert": merged["cert"],
                                        "proxies": merged["proxies"]}

    def post(self, url: str, data: bytes, timeout: tuple[float, float]) -> requests.Response:
        """The answer, its body read (a connection lost while reading raises here, as from Session.post)."""
        request = requests.PreparedRequest()
        request.prepare(method="POST", url=url, headers=self.headers, data=data)
        response = self.adapter.send(request, stream=False, timeout=timeout, **self.options)
        response.content  # noqa: B018 - read now, inside the caller's handling of transport errors
        return response


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
