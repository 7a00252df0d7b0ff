"""The size of what the console's API reads: a body over MAX_API_BODY_BYTES gets a 413 before
it is parsed (a declared Content-Length is refused at once; a chunked body is cut off once it
passes the limit). The receiver of SUMIT's triggers keeps its own, larger limit
(console/webhooks.py), so this guards ``/api/...`` only. Nothing the app does with a cut-off
body matters: it sees a body that ends early (a JSON error, nothing run) and its answer is
replaced by the 413."""

from __future__ import annotations

import json
from typing import Any

MAX_API_BODY_BYTES = 256_000  # a console action: a DAG id, a conf of at most 64 KB, up to 1,000 ids


class ApiBodyLimit:
    """ASGI middleware: ``/api/...`` request bodies of at most ``limit`` bytes."""

    def __init__(self, app: Any, limit: int = MAX_API_BODY_BYTES, prefix: str = "/api/") -> None:
        self.app, self.limit, self.prefix = app, limit, prefix

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self._guarded(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, int(declared))
            return
        seen = 0
        over = False  # past the limit: the app sees the body end there, and its answer is replaced by a 413
        refused = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal seen, over
            if over:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal refused
            if not over:
                await send(message)
            elif not refused and message["type"] == "http.response.start":
                refused = True
                await self._refuse(send, None)

        await self.app(scope, counted_receive, guarded_send)

    def _guarded(self, scope: dict[str, Any]) -> bool:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        inner = path[len(root):] if root and path.startswith(root) else path
        return inner.startswith(self.prefix)

    async def _refuse(self, send: Any, size: int | None) -> None:
        said = f"; this one is {size:,}" if size is not None else ""
        body = json.dumps({"detail": f"A console request body is at most {self.limit:,} bytes{said}."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
