"""Normalising values on their way in from the CRM (pure functions, no I/O).

The rules, decided once for every API profile:
- text is stripped; an empty string means "no value" and becomes NULL;
- NUL characters are removed (PostgreSQL text and jsonb cannot store them);
- a lone UTF-16 surrogate (half an emoji, as a server that cuts text by UTF-16 length
  sends it) becomes U+FFFD: it cannot be encoded as UTF-8, so nothing could store it;
- numbers and booleans that arrive where text is expected are kept as their text, a whole
  number without ``.0`` (a TaxID sent as a number has already lost its leading zeros; we
  keep what came);
- objects and lists where text is expected make the record invalid;
- a CustomerID is text or a whole number, at most ``MAX_ID_LENGTH`` characters: anything
  else makes the record invalid (an id is a key, and a key is indexed);
- a custom field named like a metadata key crmsync keeps itself (``last_synced_at``,
  ``crm_missing_since``) is stored as ``crm:<name>``, so neither overwrites the other;
- a missing country is ``IL``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from crmsync.core.errors import InvalidRecord
from crmsync.core.model import DEFAULT_COUNTRY, SYNCED_COLUMNS, Fields
from crmsync.core.text import MAX_ID_LENGTH, storable

_EXCERPT_VALUE_LIMIT = 200
# Metadata keys crmsync writes itself (see include/sql): a CRM custom field may not take them.
RESERVED_METADATA_KEYS = frozenset({"last_synced_at", "crm_missing_since"})


def clean_text(value: Any, *, field_name: str) -> str | None:
    """Turn one wire value into the text stored locally, or raise :class:`InvalidRecord`."""
    if value is None:
        return None
    if type(value) is str:  # nearly every value
        if not value.isprintable():  # one C scan: a NUL or a surrogate is never printable
            value = storable(value)
        return value.strip() or None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))  # JSON has one kind of number: 6100001.0 is the ZipCode 6100001
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise InvalidRecord(f"field {field_name} holds a {type(value).__name__}, expected text")
    text = storable(text).strip()
    return text or None


def clean_id(value: Any) -> str | None:
    """A CRM id as text (SUMIT sends numbers or strings); None when absent or blank."""
    if isinstance(value, bool):
        raise InvalidRecord("field CustomerID holds a boolean, expected an id")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidRecord(f"field CustomerID holds {value!r}, not a whole number")
        value = int(value)
    text = clean_text(value, field_name="CustomerID")
    if text is not None and len(text) > MAX_ID_LENGTH:
        raise InvalidRecord(f"field CustomerID is {len(text)} characters long, more than {MAX_ID_LENGTH}: not an id")
    return text


def custom_field_name(key: Any) -> str:
    """The metadata key of a CRM custom field (see RESERVED_METADATA_KEYS)."""
    name = clean_json(str(key))
    return f"crm:{name}" if name in RESERVED_METADATA_KEYS else name


def clean_json(value: Any) -> Any:
    """A custom-field value made safe for jsonb: NUL characters and lone surrogates removed, recursively."""
    if isinstance(value, str):
        return value if value.isprintable() else storable(value)
    if isinstance(value, Mapping):
        return {clean_json(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)  # jsonb has no NaN/Infinity
    return value


def finish_fields(raw: dict[str, str | None]) -> Fields:
    """Every synced column present, in SYNCED_COLUMNS order, with the default country applied
    (``raw`` itself when it already holds exactly those columns in that order)."""
    fields: Fields = raw if tuple(raw) == SYNCED_COLUMNS else {column: raw.get(column) for column in SYNCED_COLUMNS}
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
