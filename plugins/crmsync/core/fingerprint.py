"""Fingerprints of customer content, used to tell who changed what since the last sync.

``fields_fingerprint`` has a twin in SQL, ``crmsync_fingerprint(text[])`` in
include/sql/schema.sql, so the database can find locally changed rows without shipping them
to Python. Both hash the same text: each value as ``<length>:<value>`` (NULL as ``-``),
joined by ``|``, MD5 over UTF-8. The length prefix makes the encoding unambiguous, so
``("a|b", None)`` and ``("a", "b")`` cannot collide. MD5 is for change detection here, not
security. tests/integration check that both twins agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from crmsync.core.model import SYNCED_COLUMNS, CrmCustomer, synced_values


# json.dumps(custom, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str),
# without building an encoder per call (a pull fingerprints every record it reads).
_CUSTOM_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
# msgspec writes the same text four times faster for the common case, a dict of text values
# (keys sorted by code point, the same escapes, UTF-8 unescaped: tests/unit check both agree).
_FAST_CUSTOM_ENCODER = msgspec.json.Encoder(order="sorted")
_EMPTY_CUSTOM = hashlib.md5(b"{}", usedforsecurity=False).hexdigest()


def fingerprint_values(values: Sequence[str | None]) -> str:
    """The fingerprint of an ordered list of text values."""
    text = "|".join(["-" if v is None else f"{len(v)}:{v}" for v in values])
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def fields_fingerprint(fields: Mapping[str, str | None]) -> str:
    """The fingerprint of a customer's synced columns (see model.SYNCED_COLUMNS)."""
    try:
        values = synced_values(fields)  # one C call for the usual complete dict
    except KeyError:
        values = [fields.get(column) for column in SYNCED_COLUMNS]
    return fingerprint_values(values)


def custom_fingerprint(custom: Mapping[str, Any]) -> str:
    """The fingerprint of the CRM's custom fields, independent of key order."""
    if not custom:
        return _EMPTY_CUSTOM
    if type(custom) is dict and all(type(key) is str and type(value) is str for key, value in custom.items()):
        data = _FAST_CUSTOM_ENCODER.encode(custom)
    else:
        data = _CUSTOM_ENCODER.encode(custom).encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def customer_fingerprints(customer: CrmCustomer) -> tuple[str, str]:
    """(fields, custom fields) fingerprints of a CRM customer, computed on first use and kept on
    the record: the read-ahead thread computes them for the page payload, the merge and the
    lost-create lookup read them again. Two threads computing at once get equal values."""
    known = customer.fingerprints
    if known is None:
        known = customer.fingerprints = (fields_fingerprint(customer.fields), custom_fingerprint(customer.custom))
    return known


# Part of every record hash: bumped when a change to crmsync's own decoding means a record
# read again must be mapped again even though SUMIT sent the same bytes.
MAPPING_VERSION = "1"
_RECORD_ENCODER = msgspec.json.Encoder()  # keys in the order SUMIT sent them: another order is another record


def record_hashes(records: Sequence[Any], salt: str) -> list[str]:
    """The hash of each wire record as SUMIT sent it, with ``salt`` (what decides how a record is
    mapped: MAPPING_VERSION, the API profile, the field rules). Equal hashes mean the record maps
    to the same row as last time, so a re-pull need not map it (crmsync.flows.pull). A record
    left unparsed (msgspec.Raw: its JSON as sent) is hashed as it is, 0.5 µs; a parsed one as
    its JSON written again, 1.5 µs. 32 hex digits, which PostgreSQL reads as the uuid the table
    keeps."""
    base = hashlib.md5(salt.encode("utf-8"), usedforsecurity=False)
    encode = _RECORD_ENCODER.encode
    hashes = []
    for record in records:
        if type(record) is msgspec.Raw:
            h = base.copy()
            h.update(record)
            hashes.append(h.hexdigest())
            continue
        try:
            data = encode(record)
        except (msgspec.MsgspecError, TypeError, ValueError, OverflowError):  # ValueError: a lone surrogate
            data = json.dumps(record, default=str).encode("ascii")  # every character escaped
        h = base.copy()
        h.update(data)
        hashes.append(h.hexdigest())
    return hashes
