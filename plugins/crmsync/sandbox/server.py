"""The SUMIT sandbox server: a real HTTP server speaking both profiles of the SUMIT API
(``guide``: the synchronization guide's endpoints; ``rest``: SUMIT's published REST API),
over one store of customers kept in the guide's shape.

Why a real server: the sync's hard parts (retries, timeouts, paging guards, protocol errors,
keeping the API key secret) only show up over a socket, so tests and demos talk HTTP to this
instead of mocking the client.

``SandboxState`` holds everything (customers, raw records, fault knobs, request log) behind
one lock; ``SandboxHTTPServer`` answers the API and the control API (``/_sandbox/...``, see
the package docstring); ``SandboxServer`` runs it on a daemon thread for in-process use.
The configured API key never reaches stderr or the request log: request bodies are redacted
and every emitted line is scrubbed of the key as a last guard.
"""

from __future__ import annotations

import hmac
import json
import socket
import sys
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

LIST_PATH = "/website/customers/getlist/"
UPDATE_PATH = "/website/customers/update/"
REST_LIST_PATH = "/crm/data/listentities/"
REST_UPDATE_PATH = "/accounting/customers/update/"
REST_CREATE_PATH = "/accounting/customers/create/"
API_PATHS = (LIST_PATH, UPDATE_PATH, REST_LIST_PATH, REST_UPDATE_PATH, REST_CREATE_PATH)
REST_PATHS = (REST_LIST_PATH, REST_UPDATE_PATH, REST_CREATE_PATH)
# guide key -> (entity property in listentities, Details key in create/update) in the rest profile
REST_TYPED = {"Name": ("Customers_FullName", "Name"), "Email": ("Customers_EmailAddress", "EmailAddress"),
              "Phone": ("Customers_Phone", "Phone"), "TaxID": ("Customers_CompanyNumber", "CompanyNumber"),
              "Address": ("Customers_Address", "Address"), "City": ("Customers_City", "City"),
              "ZipCode": ("Customers_ZipCode", "ZipCode")}
SEARCH_BY_EXTERNAL_IDENTIFIER = 2
CONTROL_PREFIX = "/_sandbox/"

ID_KEY = "CustomerID"
GUIDE_KEYS = (ID_KEY, "Name", "Email", "Phone", "CompanyName", "TaxID", "Address", "City", "State", "Country",
              "ZipCode")
FIRST_CUSTOMER_ID = 100001
INVALID_CREDENTIALS = "Invalid credentials (CompanyID/APIKey)"
REDACTED = "***"
VERBOSE_BODY_CHARS = 2000  # a verbose log line shows this much of a request body

COUNTED_FAULTS = ("fail_next", "malformed_next", "drop_next", "drop_after_next", "hang_next")
MALFORMED_KINDS = ("html", "truncated", "not_json", "missing_customers")
# Every field a counted fault accepts, with its default ("count" defaults to 1).
_FAULT_DEFAULTS: dict[str, dict[str, Any]] = {
    "fail_next": {"status": 503, "retry_after": None, "body": "json", "endpoint": None},
    "malformed_next": {"kind": "html", "endpoint": None},
    "drop_next": {"endpoint": None},
    "drop_after_next": {"endpoint": None},
    "hang_next": {"seconds": 5.0, "endpoint": None},
}
_FLAG_KNOBS = ("ignore_paging", "ignore_paging_says_more")
_LIST_KNOBS = ("reject_names", "reject_customer_ids")
KNOB_NAMES = ("latency_ms", *_FLAG_KNOBS, *_LIST_KNOBS, *COUNTED_FAULTS)

_MALFORMED_BODIES: dict[str, tuple[str, bytes]] = {
    "html": ("text/html; charset=utf-8",
             b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head>"
             b"<body><h1>The service is temporarily unavailable</h1></body></html>"),
    "truncated": ("application/json; charset=utf-8",
                  b'{"Status": "Success", "UserErrorMessage": null, "Customers": [{"CustomerID": "100001", "Na'),
    "not_json": ("text/plain; charset=utf-8", b"Service temporarily unavailable, please try again later."),
}


class SandboxInputError(ValueError):
    """A control request or knob the sandbox refuses; answered with HTTP 400 and this message."""


# -- knob validation ----------------------------------------------------------------------------
# A mistyped knob must fail loudly: silently ignoring it would let a fault test pass without
# the fault ever happening.


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SandboxInputError(f"{name} must be a non-negative number, not {value!r}")
    return value


def _whole_number(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SandboxInputError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value


def _fault(name: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise SandboxInputError(f"{name} must be an object such as {{\"count\": 1}}, not {spec!r}")
    defaults = _FAULT_DEFAULTS[name]
    unknown = sorted(set(spec) - set(defaults) - {"count", "after"})
    if unknown:
        raise SandboxInputError(
            f"{name} has no field {', '.join(unknown)}; it takes count, after, {', '.join(defaults)}")
    fault = {"count": 1, "after": 0, **defaults, **spec}
    _whole_number(f"{name}.count", fault["count"])
    _whole_number(f"{name}.after", fault["after"])  # matching requests let through first
    if fault["endpoint"] is not None and not isinstance(fault["endpoint"], str):
        raise SandboxInputError(f"{name}.endpoint must be a path fragment such as \"getlist\" or null")
    if name == "fail_next":
        status = fault["status"]
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise SandboxInputError(f"fail_next.status must be an HTTP error status (400-599), not {status!r}")
        if fault["retry_after"] is not None:
            _number("fail_next.retry_after", fault["retry_after"])
        if fault["body"] not in ("json", "html"):
            raise SandboxInputError(f"fail_next.body must be \"json\" or \"html\", not {fault['body']!r}")
    elif name == "malformed_next" and fault["kind"] not in MALFORMED_KINDS:
        raise SandboxInputError(
            f"malformed_next.kind must be one of {', '.join(MALFORMED_KINDS)}, not {fault['kind']!r}")
    elif name == "hang_next":
        _number("hang_next.seconds", fault["seconds"])
    return fault


def normalize_knobs(knobs: dict[str, Any]) -> dict[str, Any]:
    """Validated copies of ``knobs``; a ``None`` value is kept and means "remove this knob"."""
    normalized: dict[str, Any] = {}
    for name, value in knobs.items():
        if name not in KNOB_NAMES:
            raise SandboxInputError(f"unknown knob {name!r}; known knobs: {', '.join(KNOB_NAMES)}")
        if value is None:
            normalized[name] = None
        elif name == "latency_ms":
            normalized[name] = _number(name, value)
        elif name in _FLAG_KNOBS:
            if not isinstance(value, bool):
                raise SandboxInputError(f"{name} must be true or false, not {value!r}")
            normalized[name] = value
        elif name in _LIST_KNOBS:
            if not isinstance(value, list):
                raise SandboxInputError(f"{name} must be a list, not {value!r}")
            normalized[name] = list(value)
        else:
            normalized[name] = _fault(name, value)
    return normalized


def _format_seconds(seconds: float) -> str:
    """Retry-After text: whole seconds as an integer ("2"), fractions kept ("0.3") for fast tests."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


# -- state --------------------------------------------------------------------------------------


class SandboxState:
    """Customers, raw records, fault knobs and the request log, behind one lock.

    Every public method takes the lock itself, so tests may call them directly from another
    thread while the server runs. Stored customer dicts are never mutated (an update stores
    a new dict), so a page can be JSON-encoded outside the lock without racing an update.
    """

    def __init__(self, *, company_id: int = 1000, api_key: str = "sandbox-key", status_style: str = "string",
                 list_shape: str = "top", numeric_ids: bool = False, max_page_size: int = 1000,
                 customers_folder: str = "customers", **knobs: Any):
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        if status_style not in ("string", "numeric"):
            raise ValueError(f"status_style must be 'string' or 'numeric', not {status_style!r}")
        if list_shape not in ("top", "data"):
            raise ValueError(f"list_shape must be 'top' or 'data', not {list_shape!r}")
        self.lock = threading.RLock()
        self.company_id = int(company_id)
        self.api_key = api_key
        self.status_style = status_style
        self.list_shape = list_shape
        self.numeric_ids = numeric_ids
        self.max_page_size = _whole_number("max_page_size", max_page_size, minimum=1)
        self.customers: dict[str, dict[str, Any]] = {}  # str(CustomerID) -> record
        self.order: list[str] = []  # keys of ``customers`` in insertion order: O(page) paging
        self.raw: list[Any] = []
        self.log: list[dict[str, Any]] = []
        self.next_id = FIRST_CUSTOMER_ID
        self.customers_folder = str(customers_folder)  # rest profile: the folder listentities serves
        self.external_ids: dict[str, str] = {}  # rest profile: ExternalIdentifier -> key in customers
        # Start-time knobs (flags) are what a reset returns to, so a server started with
        # --latency-ms or --ignore-paging keeps behaving that way across test resets.
        self.initial_knobs = {k: v for k, v in normalize_knobs(knobs).items() if v is not None}
        self.knobs: dict[str, Any] = json.loads(json.dumps(self.initial_knobs))

    # -- customers --------------------------------------------------------------------------

    def _canonical_id(self, value: Any) -> Any:
        """An id as this server spells ids: text, or a number with ``numeric_ids``."""
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise SandboxInputError(f"CustomerID must be text or an integer, not {value!r}")
        if not self.numeric_ids:
            return str(value)
        text = str(value)
        return int(text) if text.isascii() and text.isdigit() else value

    def _new_id(self) -> Any:
        while str(self.next_id) in self.customers:  # an explicitly seeded id may sit in the sequence
            self.next_id += 1
        value = self.next_id
        self.next_id += 1
        return value if self.numeric_ids else str(value)

    def _store(self, record: Any) -> Any:
        """Control-API upsert: the given record becomes the stored one (by CustomerID, else new)."""
        if not isinstance(record, dict):
            raise SandboxInputError(f"a customer must be a JSON object, not {record!r}")
        given = record.get(ID_KEY)
        customer_id = self._new_id() if _is_blank(given) else self._canonical_id(given)
        key = str(customer_id)
        if key not in self.customers:
            self.order.append(key)
        stored = {ID_KEY: customer_id}  # the id first, as SUMIT lists it
        stored.update(record)
        stored[ID_KEY] = customer_id
        self.customers[key] = stored
        return customer_id

    def upsert(self, record: dict[str, Any]) -> Any:
        """Store one customer (replacing the one with its CustomerID, if any); return its id."""
        with self.lock:
            return self._store(record)

    def add_customers(self, records: Iterable[dict[str, Any]]) -> list[Any]:
        """Store many customers in one lock hold (seeding a million must stay fast); return their ids."""
        with self.lock:
            return [self._store(record) for record in records]

    def delete(self, ids: Iterable[Any]) -> int:
        """Remove customers by id (unknown ids are ignored); return how many were removed."""
        with self.lock:
            removed = sum(self.customers.pop(str(customer_id), None) is not None for customer_id in ids)
            self.order = [key for key in self.order if key in self.customers]
            return removed

    def add_raw(self, records: Iterable[Any]) -> int:
        """Append records ``getlist`` returns verbatim after the customers, to test hostile
        input; return how many raw records there are now."""
        with self.lock:
            self.raw.extend(records)
            return len(self.raw)

    def reset(self, customers: Iterable[dict[str, Any]] = ()) -> list[Any]:
        """Back to a fresh start: no customers, raw records or log, start-time knobs; then seed."""
        with self.lock:
            self.customers, self.order, self.raw, self.log = {}, [], [], []
            self.external_ids = {}
            self.next_id = FIRST_CUSTOMER_ID
            self.knobs = json.loads(json.dumps(self.initial_knobs))
            return self.add_customers(customers)

    def all_customers(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.customers[key] for key in self.order]

    def _window(self, start: int, stop: int | None) -> list[Any]:
        """Customers then raw records, sliced as one sequence without copying either whole."""
        count = len(self.order)
        records: list[Any] = [self.customers[key] for key in self.order[start:stop]]
        raw_stop = None if stop is None else max(0, stop - count)
        return records + self.raw[max(0, start - count):raw_stop]

    # -- knobs ------------------------------------------------------------------------------

    def set_knobs(self, knobs: dict[str, Any]) -> dict[str, Any]:
        """Merge ``knobs`` into the current ones (``"reset": true`` first returns to the start-time
        knobs; a ``None`` value removes a knob); return the resulting knobs."""
        knobs = dict(knobs)
        reset = knobs.pop("reset", False)
        normalized = normalize_knobs(knobs)
        with self.lock:
            if reset:
                self.knobs = json.loads(json.dumps(self.initial_knobs))
            for name, value in normalized.items():
                if value is None:
                    self.knobs.pop(name, None)
                else:
                    self.knobs[name] = value
            return self.current_knobs()

    def current_knobs(self) -> dict[str, Any]:
        """A deep copy: counted faults keep changing under the lock."""
        with self.lock:
            return json.loads(json.dumps(self.knobs))

    def take_fault(self, path: str) -> tuple[str, dict[str, Any]] | None:
        """Consume and return the first pending counted fault that applies to ``path``."""
        with self.lock:
            for name in COUNTED_FAULTS:
                fault = self.knobs.get(name)
                if not fault or fault["count"] <= 0:
                    continue
                if fault["endpoint"] and fault["endpoint"] not in path:
                    continue
                if fault.get("after", 0) > 0:  # e.g. let page 1 through, then fail
                    fault["after"] -= 1
                    continue
                fault["count"] -= 1
                return name, dict(fault)
            return None

    def latency_seconds(self) -> float:
        with self.lock:
            return float(self.knobs.get("latency_ms") or 0) / 1000

    # -- request log ------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """``text`` with the configured API key replaced: the last guard before any output."""
        return text.replace(self.api_key, REDACTED)

    def redact(self, value: Any) -> Any:
        """A deep copy of a request body fit for logs: every ``Credentials.APIKey`` (right or
        wrong: a wrong key may be someone's real one) becomes ``***``, and the configured key
        is scrubbed from every other string too."""
        if isinstance(value, dict):
            copy = {self.scrub(str(k)): self.redact(v) for k, v in value.items()}
            if isinstance(copy.get("Credentials"), dict) and "APIKey" in copy["Credentials"]:
                copy["Credentials"]["APIKey"] = REDACTED
            return copy
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        if isinstance(value, str):
            return self.scrub(value)
        return value

    def record_request(self, path: str, status: int, body: Any) -> None:
        """Log one API request; status 0 means the connection was dropped without an answer."""
        entry = {"path": self.scrub(path), "status": status, "body": self.redact(body)}
        with self.lock:
            self.log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.log)

    def stats(self) -> dict[str, int]:
        """How many API requests each path received since the last reset."""
        counts: dict[str, int] = {}
        for entry in self.requests():
            counts[entry["path"]] = counts.get(entry["path"], 0) + 1
        return counts

    # -- envelopes --------------------------------------------------------------------------

    def status(self, ok: bool, numeric: bool = False) -> Any:
        """``numeric``: the rest profile, which always says 0/1 as SUMIT's published API does."""
        if numeric or self.status_style == "numeric":
            return 0 if ok else 1
        return "Success" if ok else "GeneralError"

    def failure(self, message: str, numeric: bool = False) -> dict[str, Any]:
        return {"Status": self.status(False, numeric), "UserErrorMessage": message, "TechnicalErrorDetails": None,
                "Data": None}

    def success(self, data: dict[str, Any] | None = None, numeric: bool = False, **top: Any) -> dict[str, Any]:
        return {"Status": self.status(True, numeric), "UserErrorMessage": None, "TechnicalErrorDetails": None,
                "Data": data or {}, **top}

    # -- the API ----------------------------------------------------------------------------

    def credentials_ok(self, body: dict[str, Any]) -> bool:
        credentials = body.get("Credentials")
        if not isinstance(credentials, dict):
            return False
        company, key = credentials.get("CompanyID"), credentials.get("APIKey")
        if isinstance(company, str) and company.strip().isascii() and company.strip().isdigit():
            company = int(company)
        if isinstance(company, bool) or not isinstance(company, int) or not isinstance(key, str):
            return False
        return company == self.company_id and hmac.compare_digest(key.encode(), self.api_key.encode())

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """HTTP status and envelope for an API call that no fault intercepted."""
        if path not in API_PATHS:
            return 404, self.failure(f"Unknown endpoint {path}")
        rest = path in REST_PATHS
        if not self.credentials_ok(body):
            return 200, self.failure(INVALID_CREDENTIALS, numeric=rest)
        if path == LIST_PATH:
            return 200, self.get_list(body)
        if path == UPDATE_PATH:
            return 200, self.update(body)
        if path == REST_LIST_PATH:
            return 200, self.list_entities(body)
        return 200, self.save_details(body, create=path == REST_CREATE_PATH)

    def get_list(self, body: dict[str, Any]) -> dict[str, Any]:
        listing: dict[str, Any] = {}
        with self.lock:
            if self.knobs.get("ignore_paging"):
                listing["Customers"] = self._window(0, None)
                if self.knobs.get("ignore_paging_says_more"):
                    listing["HasNextPage"] = True  # a broken server: clients must not loop on it
            elif body.get("Paging") is None:
                listing["Customers"] = self._window(0, None)
            else:
                try:
                    start, size = self._paging(body["Paging"])
                except SandboxInputError as error:
                    return self.failure(str(error))
                listing["Customers"] = self._window(start, start + size)
                listing["HasNextPage"] = start + size < len(self.order) + len(self.raw)
        if self.list_shape == "data":
            return self.success(listing)
        return self.success(None, **listing)

    def _paging(self, paging: Any) -> tuple[int, int]:
        """(StartIndex, page size capped at max_page_size) from a request's Paging object."""
        if not isinstance(paging, dict):
            raise SandboxInputError("Paging must be an object with StartIndex and PageSize")
        start = _paging_number(paging, "StartIndex", 0, minimum=0)
        size = _paging_number(paging, "PageSize", self.max_page_size, minimum=1)
        return start, min(size, self.max_page_size)

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        record = body.get("Customer")
        if not isinstance(record, dict):
            return self.failure("Customer is required")
        name = record.get("Name")
        if not isinstance(name, str) or not name.strip():
            return self.failure("Customer name is required")
        given = record.get(ID_KEY)
        with self.lock:
            if name in self.knobs.get("reject_names", []):
                return self.failure(f"Rejected by sandbox rule: customer name {name!r} is refused")
            if not _is_blank(given) and str(given) in map(str, self.knobs.get("reject_customer_ids", [])):
                return self.failure(f"Rejected by sandbox rule: customer {given} is refused")
            if _is_blank(given):
                return self.success({ID_KEY: self._store({k: v for k, v in record.items() if k != ID_KEY})})
            key = str(given)
            stored = self.customers.get(key)
            if stored is None:
                return self.failure(f"Customer {given} not found")
            # The keys sent overwrite, the others (custom fields included) stay; the id keeps
            # the server's spelling whatever type the client sent it as.
            changes = {k: v for k, v in record.items() if k != ID_KEY}
            self.customers[key] = {**stored, **changes}
            return self.success({ID_KEY: stored[ID_KEY]})


    # -- the rest profile ---------------------------------------------------------------------

    def entity(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stored customer as listentities shows it: typed properties, every value a list."""
        key = record[ID_KEY]
        entity: dict[str, Any] = {"ID": int(key) if str(key).isdigit() else key, "Folder": self.customers_folder}
        for guide_key, value in record.items():
            if guide_key != ID_KEY and value is not None:
                entity[REST_TYPED[guide_key][0] if guide_key in REST_TYPED else guide_key] = [value]
        return entity

    def list_entities(self, body: dict[str, Any]) -> dict[str, Any]:
        if str(body.get("Folder")) != self.customers_folder:
            return self.failure(f"Folder {body.get('Folder')!r} not found", numeric=True)
        with self.lock:
            if self.knobs.get("ignore_paging"):
                start, stop = 0, None
            else:
                try:
                    start, size = self._paging(body.get("Paging") or {})
                except SandboxInputError as error:
                    return self.failure(str(error), numeric=True)
                stop = start + size
            window = self._window(start, stop)
            count = len(self.order)
            # Customers become entities; raw records are served verbatim, as in getlist.
            entities = [self.entity(r) if i + start < count else r for i, r in enumerate(window)]
            more = (stop is not None and stop < count + len(self.raw)) or bool(self.knobs.get("ignore_paging_says_more"))
        return self.success({"Entities": entities, "HasNextPage": more}, numeric=True)

    def save_details(self, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """/accounting/customers/create/ and /update/: Details in, Data.CustomerID out."""
        details = body.get("Details")
        if not isinstance(details, dict):
            return self.failure("Details are required", numeric=True)
        name = details.get("Name")
        if not isinstance(name, str) or not name.strip():
            return self.failure("Customer name is required", numeric=True)
        record = {guide: details[rest] for guide, (_, rest) in REST_TYPED.items() if rest in details}
        if isinstance(details.get("Properties"), dict):
            record.update(details["Properties"])  # company name, state, country, custom properties
        with self.lock:
            if name in self.knobs.get("reject_names", []) or str(details.get("ID")) in map(
                    str, self.knobs.get("reject_customer_ids", [])):
                return self.failure(f"Rejected by sandbox rule: customer name {name!r} is refused", numeric=True)
            external = details.get("ExternalIdentifier")
            if create:
                found = self.external_ids.get(str(external)) if external not in (None, "") else None
                if details.get("SearchMode") == SEARCH_BY_EXTERNAL_IDENTIFIER and found in self.customers:
                    key = found  # "create customer or find an existing one according to SearchMode"
                else:
                    key = str(self._store(record))
                    if external not in (None, ""):
                        self.external_ids[str(external)] = key
            else:
                key = str(details.get("ID"))
                stored = self.customers.get(key)
                if stored is None:
                    return self.failure(f"Customer {details.get('ID')} not found", numeric=True)
                self.customers[key] = {**stored, **record}
        return self.success({"CustomerID": int(key) if key.isdigit() else key,
                             "CustomerHistoryURL": f"/accounting/customers/history/{key}"}, numeric=True)


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _paging_number(paging: dict[str, Any], name: str, default: int, minimum: int) -> int:
    value = paging.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SandboxInputError(f"Paging.{name} must be an integer >= {minimum}")
    return value


# -- HTTP ---------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """One connection. HTTP/1.1 keep-alive, like the real API behind a load balancer."""

    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle's algorithm on, the body waits for
        # the client's delayed ACK (40 ms on Linux) and every call would look 40 ms slower.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Silenced: ``_log`` writes the one line per request, key-free."""

    # -- plumbing ---------------------------------------------------------------------------

    def _log(self, status: int | None, body: Any = None) -> None:
        """One stderr line per request, written before the answer: once a client holds the
        answer, the line exists (tests read it without waiting)."""
        elapsed_ms = 1000 * (time.monotonic() - self._started)
        line = f"{self.command} {self.path} {status if status else 'dropped'} {elapsed_ms:.1f}ms"
        if self.server.verbose and body is not None:
            text = json.dumps(self.server.state.redact(body), ensure_ascii=False)
            line += " " + text[:VERBOSE_BODY_CHARS] + ("..." if len(text) > VERBOSE_BODY_CHARS else "")
        self.server.emit(line)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, _encode(payload), "application/json; charset=utf-8")

    def _read_body(self) -> bytes | None:
        """The request body, or None when its length is unknowable (then the connection closes)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _handle(self, route: Any) -> None:
        """Run ``route``; a sandbox bug answers 500 (and logs why) rather than a silent hang-up."""
        self._started = time.monotonic()
        try:
            route()
        except ConnectionError:
            self.close_connection = True  # the client went away (e.g. it timed out on a hang)
        except Exception as error:  # noqa: BLE001 - reported to the client and the log
            self.close_connection = True
            self.server.emit(f"{self.command} {self.path} sandbox error: {type(error).__name__}: {error}")
            try:
                self._send_json(500, {"error": f"sandbox error: {type(error).__name__}"})
            except OSError:
                pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._handle(self._get)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self._handle(self._post)

    def _get(self) -> None:
        if self.path.startswith(CONTROL_PREFIX):
            self._control(True, None)
            return
        status = 405 if _route(self.path) in API_PATHS else 404
        self._log(status)
        self._send_json(status, self.server.state.failure(f"{self.path} answers POST only" if status == 405
                                                          else f"Unknown endpoint {self.path}"))

    def _post(self) -> None:
        raw = self._read_body()
        parsed, body = _parse_json(raw)
        if self.path.startswith(CONTROL_PREFIX):
            self._control(parsed, body)
        else:
            self._api(parsed, body)

    # -- the API ----------------------------------------------------------------------------

    def _api(self, parsed: bool, body: Any) -> None:
        state = self.server.state
        path = _route(self.path)
        fault = state.take_fault(path)
        delay = state.latency_seconds()
        if fault and fault[0] == "hang_next":
            delay += fault[1]["seconds"]
            fault = None  # a hang then answers normally
        if delay:
            time.sleep(delay)
        if fault and fault[0] == "drop_next":
            self._drop(body)
            return
        status, content_type, data, headers = self._api_answer(path, parsed, body, fault)
        if fault and fault[0] == "drop_after_next":
            self._drop(body)  # the request was carried out; only its answer is lost
            return
        state.record_request(self.path, status, body)
        self._log(status, body)
        self._send(status, data, content_type, headers)

    def _drop(self, body: Any) -> None:
        """Close the connection without any HTTP answer (logged with status 0)."""
        self.server.state.record_request(self.path, 0, body)
        self._log(None, body)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _api_answer(self, path: str, parsed: bool, body: Any,
                    fault: tuple[str, dict[str, Any]] | None) -> tuple[int, str, bytes, dict[str, str]]:
        state = self.server.state
        json_type = "application/json; charset=utf-8"
        if fault and fault[0] == "fail_next":
            return _failed_answer(fault[1])
        if fault and fault[0] == "malformed_next":
            kind = fault[1]["kind"]
            if kind == "missing_customers":
                return 200, json_type, _encode(state.success()), {}
            content_type, data = _MALFORMED_BODIES[kind]
            return 200, content_type, data, {}
        if not parsed:
            return 400, json_type, _encode(state.failure("Request body is not valid JSON")), {}
        if not isinstance(body, dict):
            return 400, json_type, _encode(state.failure("Request body must be a JSON object")), {}
        status, envelope = state.answer(path, body)
        return status, json_type, _encode(envelope), {}

    # -- the control API --------------------------------------------------------------------

    def _control(self, parsed: bool, body: Any) -> None:
        """Answer ``/_sandbox/...``: no credentials, JSON in and out, HTTP 400 for bad input."""
        state = self.server.state
        routes = {
            ("GET", "customers"): lambda _: {"customers": state.all_customers()},
            ("GET", "faults"): lambda _: state.current_knobs(),
            ("GET", "requests"): lambda _: {"requests": state.requests()},
            ("GET", "stats"): lambda _: state.stats(),
            ("POST", "reset"): lambda b: {"ids": state.reset(_list_field(b, "customers", required=False))},
            ("POST", "customers"): lambda b: {"ids": state.add_customers(_list_field(b, "customers"))},
            ("POST", "customers/delete"): lambda b: {"deleted": state.delete(_list_field(b, "ids"))},
            ("POST", "raw"): lambda b: {"raw_records": state.add_raw(_list_field(b, "records"))},
            ("POST", "faults"): lambda b: state.set_knobs(_object(b)),
        }
        name = _route(self.path)[len(CONTROL_PREFIX):].strip("/")
        route = routes.get((self.command, name))
        if not parsed:
            status, payload = 400, {"error": "the request body is not valid JSON"}
        elif route is None:
            known = any(path == name for _, path in routes)
            status, payload = (405, {"error": f"{self.path} does not answer {self.command}"}) if known else (
                404, {"error": f"unknown control endpoint {self.path}"})
        else:
            try:
                status, payload = 200, route(body)
            except SandboxInputError as error:
                status, payload = 400, {"error": str(error)}
        self._log(status, body if self.command == "POST" else None)
        self._send_json(status, payload)


def _route(path: str) -> str:
    """The path a request is routed by: no query string, one trailing slash."""
    return path.split("?", 1)[0].rstrip("/") + "/"


def _parse_json(raw: bytes | None) -> tuple[bool, Any]:
    if raw is None:
        return False, None
    if not raw.strip():
        return True, None
    try:
        return True, json.loads(raw.decode("utf-8"), parse_constant=_non_finite)
    except (UnicodeDecodeError, ValueError):
        return False, None


_FAST_JSON = msgspec.json.Encoder()
_stores_non_finite = False  # a request body brought NaN or Infinity in (hostile-record tests)


def _non_finite(name: str) -> float:
    """``json``'s own reading of NaN, Infinity and -Infinity, remembered (see _encode)."""
    global _stores_non_finite
    _stores_non_finite = True
    return float(name)


def _encode(payload: Any) -> bytes:
    """UTF-8 JSON; text holding a lone surrogate (half an emoji, as a server cutting text by
    UTF-16 length sends it) has no UTF-8 form, so it goes out as ``\\udXXX`` escapes instead.

    msgspec writes a 1,000-customer page five times faster than ``json``: the sandbox shares
    the machine with what it serves (the benchmark), so it takes as little of it as it can.
    msgspec would write NaN as null, so once NaN or Infinity came in, ``json`` writes everything.
    """
    if not _stores_non_finite:
        try:
            return _FAST_JSON.encode(payload)
        except (UnicodeEncodeError, TypeError, msgspec.MsgspecError):
            pass  # a lone surrogate: json below spells it
    try:
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload).encode("ascii")


def _failed_answer(fault: dict[str, Any]) -> tuple[int, str, bytes, dict[str, str]]:
    """The answer of a ``fail_next`` fault: a bare HTTP error, the way a gateway or rate limiter sends it."""
    status = fault["status"]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # a status code the stdlib has no name for, e.g. 499
        phrase = "Error"
    headers = {} if fault["retry_after"] is None else {"Retry-After": _format_seconds(fault["retry_after"])}
    if fault["body"] == "html":
        title = f"{status} {phrase}"
        page = f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return status, "text/html; charset=utf-8", page.encode("utf-8"), headers
    return status, "application/json; charset=utf-8", _encode({"error": f"{status} {phrase}"}), headers


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise SandboxInputError("the request body must be a JSON object")
    return body


def _list_field(body: Any, name: str, *, required: bool = True) -> list[Any]:
    value = _object(body).get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise SandboxInputError(f"{name!r} must be a list")
    return value


class SandboxHTTPServer(ThreadingHTTPServer):
    """The HTTP side: one thread per connection, open connections tracked so stop() ends them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: SandboxState, verbose: bool = False):
        self.state = state
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._emit_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """End idle keep-alive connections, whose threads would otherwise outlive the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def emit(self, line: str) -> None:
        """Write one log line to stderr, scrubbed of the API key, never interleaved."""
        with self._emit_lock:
            sys.stderr.write(self.state.scrub(line) + "\n")
            sys.stderr.flush()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished mid-request is routine here (timeouts, drops): one line, no traceback."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            self.emit(f"connection from {client_address[0]} failed: {type(error).__name__}: {error}")


class SandboxServer:
    """The sandbox in this process, served from a daemon thread.

    ``with SandboxServer(api_key="k", status_style="numeric") as sandbox: sandbox.url``.
    ``options`` are ``SandboxState`` settings (status_style, list_shape, numeric_ids,
    max_page_size) and start-time knobs (latency_ms, ignore_paging, fail_next, ...).
    """

    POLL_SECONDS = 0.05  # how fast stop() returns: serve_forever checks for shutdown this often

    def __init__(self, host: str = "127.0.0.1", port: int = 0, company_id: int = 1000, api_key: str = "sandbox-key",
                 *, verbose: bool = False, **options: Any):
        self.state = SandboxState(company_id=company_id, api_key=api_key, **options)
        self.httpd = SandboxHTTPServer((host, port), self.state, verbose=verbose)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self.httpd.serve_forever, args=(self.POLL_SECONDS,),
                                            name="sumit-sandbox", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()  # only valid while serve_forever runs: it waits for the loop to end
            self._thread.join()
            self._thread = None
        self.httpd.close_connections()
        self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
