"""Keep secrets out of text that may reach a log, an exception, XCom or the database."""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "***"


def redact(text: object, secrets: Iterable[str | None]) -> str:
    """Return ``str(text)`` with every occurrence of each non-empty secret replaced."""
    result = str(text)
    # Longest first, so a secret that contains another is removed whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        result = result.replace(secret, REDACTED)
    return result


def shorten(text: str, limit: int = 500) -> str:
    """Cut long server texts so one bad answer cannot flood a log line or an error row."""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"
