"""Normalising values on their way in from the CRM (pure functions, no I/O).

The rules, decided once for every API profile:
- text is stripped; an empty string means "no value" and becomes NULL;
- NUL characters are removed (PostgreSQL text and jsonb cannot store them);
- numbers and booleans that arrive where text is expected are kept as their text
  (a TaxID sent as a number has already lost its leading zeros; we keep what came);
- objects and lists where text is expected make the record invalid;
- a missing country is ``IL``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from crmsync.errors import InvalidRecord
from crmsync.model import DEFAULT_COUNTRY, SYNCED_COLUMNS, Fields

_EXCERPT_VALUE_LIMIT = 200


def clean_text(value: Any, *, field_name: str) -> str | None:
    """Turn one wire value into the text stored locally, or raise :class:`InvalidRecord`."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise InvalidRecord(f"field {field_name} holds a {type(value).__name__}, expected text")
    text = text.replace("\x00", "").strip()
    return text or None


def clean_id(value: Any) -> str | None:
    """A CRM id as text (SUMIT sends numbers or strings); None when absent or blank."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return clean_text(value, field_name="CustomerID")


def clean_json(value: Any) -> Any:
    """A custom-field value made safe for jsonb: NUL characters removed, recursively."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, Mapping):
        return {clean_json(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)  # jsonb has no NaN/Infinity
    return value


def finish_fields(raw: Mapping[str, str | None]) -> Fields:
    """Every synced column present, with the default country applied."""
    fields: Fields = {column: raw.get(column) for column in SYNCED_COLUMNS}
    if not fields["country"]:
        fields["country"] = DEFAULT_COUNTRY
    if not fields["name"]:
        raise InvalidRecord("record has no Name")
    return fields


def excerpt(record: Any) -> dict[str, Any]:
    """A short, JSON-safe copy of a bad record for the error table (never the whole thing)."""
    if not isinstance(record, Mapping):
        return {"value": clean_json(str(record))[:_EXCERPT_VALUE_LIMIT]}
    result: dict[str, Any] = {}
    for key, value in list(record.items())[:30]:
        text = value if isinstance(value, str) else json.dumps(clean_json(value), ensure_ascii=False, default=str)
        result[clean_json(str(key))[:100]] = clean_json(text)[:_EXCERPT_VALUE_LIMIT]
    return result
