"""The SUMIT sandbox: a real HTTP server speaking the guide profile of the SUMIT API.

Credentials are checked on every call, ids are assigned on create, listings page, and fault
knobs (latency, transient 5xx/429, malformed bodies, dropped connections, hangs, per-record
rejection) are set at start or at run time through the control API under ``/_sandbox/``.
The API key never appears in its output or its request log.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LIST_PATH = "/website/customers/getlist/"
UPDATE_PATH = "/website/customers/update/"
GUIDE_KEYS = ("Name", "Email", "Phone", "CompanyName", "TaxID", "Address", "City", "State", "Country", "ZipCode")
COUNTED_FAULTS = ("fail_next", "malformed_next", "drop_next", "hang_next")


def redact_body(body: Any) -> Any:
    """A copy of a request body with the API key replaced."""
    if isinstance(body, dict) and isinstance(body.get("Credentials"), dict):
        body = {**body, "Credentials": {**body["Credentials"], "APIKey": "***"}}
    return body


class SandboxState:
    """Customers, knobs and the request log, behind one lock."""

    def __init__(self, *, company_id: int, api_key: str, status_style: str = "string", list_shape: str = "top",
                 numeric_ids: bool = False, max_page_size: int = 1000, **knobs: Any):
        self.lock = threading.Lock()
        self.company_id = int(company_id)
        self.api_key = api_key
        self.status_style = status_style
        self.list_shape = list_shape
        self.numeric_ids = numeric_ids
        self.max_page_size = max_page_size
        self.customers: dict[str, dict[str, Any]] = {}
        self.raw: list[Any] = []
        self.log: list[dict[str, Any]] = []
        self.next_id = 100001
        self.knobs: dict[str, Any] = {}
        self.set_knobs(knobs)

    # -- knobs -------------------------------------------------------------------------------

    def set_knobs(self, knobs: dict[str, Any]) -> None:
        knobs = dict(knobs)
        if knobs.pop("reset", False):
            self.knobs = {}
        for name in COUNTED_FAULTS:
            if name in knobs and knobs[name] is not None:
                knobs[name] = dict(knobs[name])
        self.knobs.update({k: v for k, v in knobs.items() if v is not None})

    def take_fault(self, path: str) -> tuple[str, dict[str, Any]] | None:
        """The next counted fault that applies to ``path``, consumed."""
        for name in COUNTED_FAULTS:
            fault = self.knobs.get(name)
            if not fault or fault.get("count", 0) <= 0:
                continue
            if fault.get("endpoint") and fault["endpoint"] not in path:
                continue
            fault["count"] -= 1
            return name, fault
        return None

    # -- customers ---------------------------------------------------------------------------

    def new_id(self) -> Any:
        value = self.next_id
        self.next_id += 1
        return value if self.numeric_ids else str(value)

    def upsert(self, record: dict[str, Any]) -> Any:
        record = dict(record)
        key = record.get("CustomerID")
        if key not in (None, "") and str(key) in self.customers:
            self.customers[str(key)].update(record)
            return self.customers[str(key)]["CustomerID"]
        if key in (None, ""):
            record["CustomerID"] = self.new_id()
        self.customers[str(record["CustomerID"])] = record
        return record["CustomerID"]

    def status(self, ok: bool) -> Any:
        if self.status_style == "numeric":
            return 0 if ok else 1
        return "Success" if ok else "GeneralError"

    def failure(self, message: str) -> dict[str, Any]:
        return {"Status": self.status(False), "UserErrorMessage": message, "TechnicalErrorDetails": None, "Data": None}

    def success(self, data: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
        return {"Status": self.status(True), "UserErrorMessage": None, "TechnicalErrorDetails": None,
                "Data": data or {}, **top}

    # -- API ---------------------------------------------------------------------------------

    def credentials_ok(self, body: dict[str, Any]) -> bool:
        creds = body.get("Credentials")
        if not isinstance(creds, dict):
            return False
        try:
            company = int(creds.get("CompanyID"))
        except (TypeError, ValueError):
            return False
        return company == self.company_id and creds.get("APIKey") == self.api_key

    def get_list(self, body: dict[str, Any], missing_key: bool) -> dict[str, Any]:
        everything = list(self.customers.values()) + list(self.raw)
        paging = body.get("Paging") if not self.knobs.get("ignore_paging") else None
        listing: dict[str, Any] = {}
        if isinstance(paging, dict):
            start = max(0, int(paging.get("StartIndex") or 0))
            size = max(1, min(int(paging.get("PageSize") or self.max_page_size), self.max_page_size))
            listing["Customers"] = everything[start:start + size]
            listing["HasNextPage"] = start + size < len(everything)
        else:
            listing["Customers"] = everything
            if self.knobs.get("ignore_paging") and self.knobs.get("ignore_paging_says_more"):
                listing["HasNextPage"] = True
        if missing_key:
            listing.pop("Customers")
        if self.list_shape == "data":
            return self.success(listing)
        return self.success(None, **listing)

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        record = body.get("Customer")
        if not isinstance(record, dict):
            return self.failure("Customer is required")
        name = record.get("Name")
        if not isinstance(name, str) or not name.strip():
            return self.failure("Customer name is required")
        if name in self.knobs.get("reject_names", []) or str(record.get("CustomerID")) in map(
                str, self.knobs.get("reject_customer_ids", [])):
            return self.failure(f"Rejected by sandbox rule: customer {name!r} is refused")
        key = record.get("CustomerID")
        if key not in (None, "") and str(key) not in self.customers:
            return self.failure(f"Customer {key} not found")
        fields = {k: v for k, v in record.items() if k in GUIDE_KEYS or k == "CustomerID"}
        return self.success({"CustomerID": self.upsert(fields)})


class _Handler(BaseHTTPRequestHandler):
    server: "SandboxHTTPServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # one line per request is written by _log instead

    def _log(self, status: int, started: float, body: Any = None) -> None:
        line = f"{self.command} {self.path} {status} {1000 * (time.monotonic() - started):.1f}ms"
        if self.server.verbose and body is not None:
            line += " " + json.dumps(redact_body(body), ensure_ascii=False)[:500]
        print(line, file=sys.stderr, flush=True)

    def _send(self, status: int, payload: Any, *, headers: dict[str, str] | None = None, raw: bytes | None = None,
              content_type: str = "application/json; charset=utf-8") -> None:
        data = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read_json(self) -> tuple[Any, bool]:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if not data:
            return None, True
        try:
            return json.loads(data.decode("utf-8")), True
        except (UnicodeDecodeError, ValueError):
            return None, False

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        started = time.monotonic()
        state = self.server.state
        with state.lock:
            if self.path == "/_sandbox/customers":
                payload = {"customers": list(state.customers.values())}
            elif self.path == "/_sandbox/faults":
                payload = state.knobs
            elif self.path == "/_sandbox/requests":
                payload = {"requests": list(state.log)}
            elif self.path == "/_sandbox/stats":
                stats: dict[str, int] = {}
                for entry in state.log:
                    stats[entry["path"]] = stats.get(entry["path"], 0) + 1
                payload = stats
            else:
                payload = None
            payload = json.loads(json.dumps(payload)) if payload is not None else None
        if payload is None:
            self._send(404, {"error": "not found"})
            self._log(404, started)
        else:
            self._send(200, payload)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        started = time.monotonic()
        body, parsed = self._read_json()
        if self.path.startswith("/_sandbox/"):
            self._control(body or {})
            return
        state = self.server.state
        with state.lock:
            fault = state.take_fault(self.path)
            latency = float(state.knobs.get("latency_ms") or 0) / 1000
        if latency:
            time.sleep(latency)
        if fault and fault[0] == "hang_next":
            time.sleep(float(fault[1].get("seconds", 5)))
            fault = None
        if fault and fault[0] == "drop_next":
            self._record(body, 0)
            self._log(0, started, body)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        status, payload, headers, raw = self._answer(body, parsed, fault)
        self._record(body, status)
        self._send(status, payload, headers=headers, raw=raw,
                   content_type="text/html" if raw is not None and raw.startswith(b"<") else "application/json")
        self._log(status, started, body)

    def _record(self, body: Any, status: int) -> None:
        state = self.server.state
        with state.lock:
            state.log.append({"path": self.path, "status": status, "body": redact_body(body)})

    def _answer(self, body: Any, parsed: bool, fault: tuple[str, dict[str, Any]] | None):
        state = self.server.state
        if fault and fault[0] == "fail_next":
            status = int(fault[1].get("status", 503))
            headers = {}
            if fault[1].get("retry_after") is not None:
                headers["Retry-After"] = str(fault[1]["retry_after"])
            return status, {"error": f"sandbox fault: HTTP {status}"}, headers, None
        if fault and fault[0] == "malformed_next":
            kind = fault[1].get("kind", "html")
            if kind == "html":
                return 200, None, {}, b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            if kind == "truncated":
                return 200, None, {}, b'{"Status": "Success", "Customers": [{"CustomerID": "1", "Na'
            if kind == "not_json":
                return 200, None, {}, b"Service temporarily unavailable"
        if not parsed or not isinstance(body, dict):
            return 400, state.failure("Request body is not valid JSON"), {}, None
        with state.lock:
            if not state.credentials_ok(body):
                return 200, state.failure("Invalid credentials (CompanyID/APIKey)"), {}, None
            if self.path == LIST_PATH:
                missing = bool(fault and fault[1].get("kind") == "missing_customers")
                return 200, state.get_list(body, missing), {}, None
            if self.path == UPDATE_PATH:
                return 200, state.update(body), {}, None
        return 404, state.failure(f"Unknown endpoint {self.path}"), {}, None

    def _control(self, body: dict[str, Any]) -> None:
        state = self.server.state
        with state.lock:
            if self.path == "/_sandbox/reset":
                state.customers, state.raw, state.log, state.knobs = {}, [], [], {}
                payload = {"ids": [state.upsert(c) for c in body.get("customers") or []]}
            elif self.path == "/_sandbox/customers":
                payload = {"ids": [state.upsert(c) for c in body.get("customers") or []]}
            elif self.path == "/_sandbox/customers/delete":
                for key in body.get("ids") or []:
                    state.customers.pop(str(key), None)
                payload = {"ok": True}
            elif self.path == "/_sandbox/raw":
                state.raw.extend(body.get("records") or [])
                payload = {"ok": True}
            elif self.path == "/_sandbox/faults":
                state.set_knobs(body)
                payload = state.knobs
            else:
                payload = None
            payload = json.loads(json.dumps(payload)) if payload is not None else None
        self._send(404 if payload is None else 200, payload or {"error": "not found"})


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SandboxState, verbose: bool = False):
        super().__init__(address, _Handler)
        self.state = state
        self.verbose = verbose


class SandboxServer:
    """The sandbox in this process, on a thread: ``with SandboxServer() as s: s.url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, company_id: int = 1000, api_key: str = "sandbox-key",
                 verbose: bool = False, **options: Any):
        self.state = SandboxState(company_id=company_id, api_key=api_key, **options)
        self.httpd = SandboxHTTPServer((host, port), self.state, verbose=verbose)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "SandboxServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="sumit-sandbox", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
