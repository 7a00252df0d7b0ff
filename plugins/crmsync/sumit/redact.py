"""Keep secrets out of text that may reach a log, an exception, XCom or the database."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "***"


def secret_forms(secret: str) -> set[str]:
    """The ways a secret can be spelt in text it reached: as is, JSON-escaped (both with and
    without ``\\uXXXX`` escapes), in a ``repr``, and URL-encoded (a key with ``+ / = " \\``
    or a non-ASCII letter changes in each)."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
             repr(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}
    return {form for form in forms if form}


def redact(text: object, secrets: Iterable[str | None]) -> str:
    """Return ``str(text)`` with every occurrence of each non-empty secret, in any of its
    spellings (:func:`secret_forms`), replaced. Redact before shortening: a cut could leave a
    prefix of the secret that no longer matches."""
    result = str(text)
    forms = {form for secret in secrets if secret for form in secret_forms(secret)}
    # Longest first, so a secret that contains another is removed whole.
    for form in sorted(forms, key=len, reverse=True):
        result = result.replace(form, REDACTED)
    return result


def shorten(text: str, limit: int = 500) -> str:
    """Cut long server texts so one bad answer cannot flood a log line or an error row."""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"
