"""The sandbox's request log, and the redaction that keeps the API key out of it and out of
every line the sandbox writes.

The configured key never reaches stderr or the log: request bodies are redacted (every
``Credentials.APIKey``, right or wrong) and every emitted line is scrubbed of the key as a
last guard. A trigger subscription's ``URL`` holds a secret in its path, so a body's ``URL``
is logged as its ``scheme://host:port`` only.
"""

from __future__ import annotations

from typing import Any

from crmsync.sandbox.triggers import origin, valid_url

REDACTED = "***"


class RequestLog:
    """API requests as ``{"path", "status", "body"}`` (status 0: dropped unanswered), bodies
    redacted. Not locked itself: ``SandboxState`` calls it under its one lock."""

    def __init__(self, api_key: str):
        self.api_key = api_key
        self.entries: list[dict[str, Any]] = []

    def clear(self) -> None:
        self.entries = []

    def scrub(self, text: str) -> str:
        """``text`` with the configured API key replaced: the last guard before any output."""
        return text.replace(self.api_key, REDACTED)

    def redact(self, value: Any) -> Any:
        """A deep copy of a request body fit for logs: every ``Credentials.APIKey`` (right or
        wrong: a wrong key may be someone's real one) becomes ``***``, the configured key is
        scrubbed from every other string too, and a top-level ``URL`` (a trigger's, its secret
        in the path) shrinks to ``scheme://host:port/***``."""
        copy = self._redact(value)
        if isinstance(copy, dict) and isinstance(copy.get("URL"), str):
            copy["URL"] = origin(copy["URL"]) + "/" + REDACTED if valid_url(copy["URL"]) else REDACTED
        return copy

    def _redact(self, value: Any) -> Any:
        if isinstance(value, dict):
            copy = {self.scrub(str(k)): self._redact(v) for k, v in value.items()}
            if isinstance(copy.get("Credentials"), dict) and "APIKey" in copy["Credentials"]:
                copy["Credentials"]["APIKey"] = REDACTED
            return copy
        if isinstance(value, list):
            return [self._redact(item) for item in value]
        if isinstance(value, str):
            return self.scrub(value)
        return value

    def entry(self, path: str, status: int, body: Any) -> dict[str, Any]:
        """The log entry of one request (built outside the lock: redaction walks the whole body)."""
        return {"path": self.scrub(path), "status": status, "body": self.redact(body)}


def count_by_path(entries: list[dict[str, Any]]) -> dict[str, int]:
    """How many of ``entries`` each path received."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["path"]] = counts.get(entry["path"], 0) + 1
    return counts
