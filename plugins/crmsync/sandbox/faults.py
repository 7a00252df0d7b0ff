"""The sandbox's knobs: their validation, the counted faults an API request consumes, the rate
limit (a token bucket), and the canned faulty answers (bare HTTP errors, bodies that do not parse).

A mistyped knob must fail loudly: silently ignoring it would let a fault test pass without
the fault ever happening.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from crmsync.sandbox.encoding import JSON_TYPE, encode

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
# rest profile: the properties the customers folder has (null: any). A create or update naming
# another one in Properties is refused, as SUMIT may refuse it; listentities shows no other.
FOLDER_PROPERTIES = "folder_properties"
# How triggers post a change: SUMIT's integrations meet both shapes (triggers.py).
TRIGGER_SHAPE = "trigger_shape"
TRIGGER_SHAPES = ("object", "array", "alternate")
KNOB_NAMES = ("latency_ms", "rate_limit", *_FLAG_KNOBS, *_LIST_KNOBS, FOLDER_PROPERTIES, TRIGGER_SHAPE,
              *COUNTED_FAULTS)
RATE_LIMITED_RETRY_AFTER = 1  # seconds, the Retry-After of a rate_limit refusal

# kind -> (Content-Type, body) of a malformed_next answer; "missing_customers" is a valid
# success envelope instead, built by the caller.
MALFORMED_BODIES: dict[str, tuple[str, bytes]] = {
    "html": ("text/html; charset=utf-8",
             b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head>"
             b"<body><h1>The service is temporarily unavailable</h1></body></html>"),
    "truncated": (JSON_TYPE,
                  b'{"Status": "Success", "UserErrorMessage": null, "Customers": [{"CustomerID": "100001", "Na'),
    "not_json": ("text/plain; charset=utf-8", b"Service temporarily unavailable, please try again later."),
}


class SandboxInputError(ValueError):
    """A control request or knob the sandbox refuses; answered with HTTP 400 and this message."""


# -- validation ---------------------------------------------------------------------------------


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SandboxInputError(f"{name} must be a non-negative number, not {value!r}")
    return value


def whole_number(name: str, value: Any, minimum: int = 0) -> int:
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
    whole_number(f"{name}.count", fault["count"])
    whole_number(f"{name}.after", fault["after"])  # matching requests let through first
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
        elif name == "rate_limit":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise SandboxInputError(f"rate_limit must be a positive number of requests per second (null "
                                        f"removes the limit), not {value!r}")
            normalized[name] = value
        elif name in _FLAG_KNOBS:
            if not isinstance(value, bool):
                raise SandboxInputError(f"{name} must be true or false, not {value!r}")
            normalized[name] = value
        elif name in _LIST_KNOBS:
            if not isinstance(value, list):
                raise SandboxInputError(f"{name} must be a list, not {value!r}")
            normalized[name] = list(value)
        elif name == FOLDER_PROPERTIES:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise SandboxInputError(f"{name} must be a list of property names (null: any), not {value!r}")
            normalized[name] = list(value)
        elif name == TRIGGER_SHAPE:
            if value not in TRIGGER_SHAPES:
                raise SandboxInputError(f"{name} must be one of {', '.join(TRIGGER_SHAPES)}, not {value!r}")
            normalized[name] = value
        else:
            normalized[name] = _fault(name, value)
    return normalized


# -- the knobs in force -------------------------------------------------------------------------


def _deep_copy(knobs: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(knobs))


class FaultKnobs:
    """The knobs in force, and the start-time ones a reset returns to.

    Not locked itself: ``SandboxState`` calls it under its one lock. Counted faults change in
    place as requests consume them, so readers get deep copies (``snapshot``).
    """

    def __init__(self, knobs: dict[str, Any]):
        # Start-time knobs (flags) are what a reset returns to, so a server started with
        # --latency-ms or --ignore-paging keeps behaving that way across test resets.
        self.initial = {k: v for k, v in normalize_knobs(knobs).items() if v is not None}
        self.current: dict[str, Any] = _deep_copy(self.initial)
        self.bucket: RateLimit | None = None  # rate_limit at work; a full one whenever the knob is set

    def reset(self) -> None:
        self.current = _deep_copy(self.initial)
        self.bucket = None

    def merge(self, normalized: dict[str, Any]) -> None:
        """Apply ``normalize_knobs`` output: a ``None`` value removes that knob."""
        if "rate_limit" in normalized:
            self.bucket = None
        for name, value in normalized.items():
            if value is None:
                self.current.pop(name, None)
            else:
                self.current[name] = value

    def snapshot(self) -> dict[str, Any]:
        return _deep_copy(self.current)

    def take(self, path: str) -> tuple[str, dict[str, Any]] | None:
        """Consume and return the first pending counted fault that applies to ``path``."""
        for name in COUNTED_FAULTS:
            fault = self.current.get(name)
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
        return float(self.current.get("latency_ms") or 0) / 1000

    def admit(self, now: float) -> bool:
        """Whether an API request arriving at ``now`` (``time.monotonic()``) is within ``rate_limit``
        (always, without one); a refused request is answered 429 and never carried out."""
        rate = self.current.get("rate_limit")
        if rate is None:
            return True
        if self.bucket is None or self.bucket.rate != rate:
            self.bucket = RateLimit(rate, now)
        return self.bucket.admit(now)


class RateLimit:
    """The ``rate_limit`` knob: a token bucket holding one second's worth of requests (at least
    one), refilled at ``rate`` per second and full when the knob is set. A request finding no
    whole token is refused and takes none: R requests pass at once, then R per second."""

    def __init__(self, rate: float, now: float):
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.last = now

    def admit(self, now: float) -> bool:
        if now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
        if self.tokens >= 1 - 1e-9:  # float dust must not refuse a request that is on time
            self.tokens = max(0.0, self.tokens - 1)
            return True
        return False


# -- canned faulty answers ----------------------------------------------------------------------


def _format_seconds(seconds: float) -> str:
    """Retry-After text: whole seconds as an integer ("2"), fractions kept ("0.3") for fast tests."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def rate_limited_answer() -> tuple[int, str, bytes, dict[str, str]]:
    """The answer to a request beyond ``rate_limit``: 429 with ``Retry-After: 1``, as a gateway sends it."""
    return failed_answer({"status": 429, "retry_after": RATE_LIMITED_RETRY_AFTER, "body": "json"})


def failed_answer(fault: dict[str, Any]) -> tuple[int, str, bytes, dict[str, str]]:
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
    return status, JSON_TYPE, encode({"error": f"{status} {phrase}"}), headers
