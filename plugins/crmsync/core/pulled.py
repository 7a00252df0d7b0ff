"""A pulled page, and the row each pulled customer travels as to the database.

A pull moves 100,000 customers through Python; most of them are new or unchanged, and for
those the database needs their values, not objects. So an API profile may map a record
straight to a *row* — a list, by position:

    [CRM id, the SYNCED_COLUMNS in order, custom fields, fields fingerprint, custom-fields
     fingerprint, changed_at, external id, extras, record hash]

— and a :class:`CrmCustomer` is built only for the customers the merge must decide on (their
CRM copy changed) or when field rules apply. include/sql/pull_page.sql reads these positions.
The record hash (:func:`crmsync.core.fingerprint.record_hashes`, present when the pull computed
it) is the hash of the record as SUMIT sent it: a later pull that reads the same record skips
its mapping altogether (crmsync.flows.pull).
(Computing the fingerprints in PostgreSQL instead was measured and dropped: 10-20 µs a row
there, 4 µs in Python; docs/performance.md.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from crmsync.core.errors import InvalidRecord
from crmsync.core.fingerprint import customer_fingerprints, record_hashes
from crmsync.core.mapping import excerpt
from crmsync.core.model import SYNCED_COLUMNS, CrmCustomer, RejectedRecord, pulled_extras, restore_extras, synced_values
from crmsync.core.text import MAX_ID_LENGTH, storable_id

_N = len(SYNCED_COLUMNS)
CUSTOM, FINGERPRINT, CUSTOM_FINGERPRINT, CHANGED_AT, EXTERNAL_ID, EXTRAS, RECORD_HASH = range(_N + 1, _N + 8)


def customer_row(c: CrmCustomer) -> list[Any]:
    """``c`` as a row."""
    row = [c.sumit_id, *synced_values(c.fields), c.custom, *customer_fingerprints(c), c.changed_at, c.external_id,
           pulled_extras(c)]
    if c.record_hash is not None:
        row.append(c.record_hash)
    return row


def row_customer(row: list[Any]) -> CrmCustomer:
    """The customer a row holds (the row as :func:`customer_row` or an API profile made it, or
    as read back from its JSON: ``changed_at`` as ISO text then)."""
    changed_at = row[CHANGED_AT]
    if isinstance(changed_at, str):
        changed_at = datetime.fromisoformat(changed_at)
    c = CrmCustomer(row[0], dict(zip(SYNCED_COLUMNS, row[1:_N + 1])), row[CUSTOM], changed_at, row[EXTERNAL_ID])
    c.fingerprints = (row[FINGERPRINT], row[CUSTOM_FINGERPRINT])
    if len(row) > RECORD_HASH:
        c.record_hash = row[RECORD_HASH]
    return restore_extras(c, row[EXTRAS] if len(row) > EXTRAS else None)


class RecordIds(msgspec.Struct):
    """The keys a record's CRM id is read from (:func:`record_id`), as msgspec reads them from a
    record left unparsed: only these two values are built (an API profile reads a whole page's
    ids this way in one call, crmsync.sumit.api)."""

    CustomerID: Any = msgspec.UNSET
    ID: Any = msgspec.UNSET

    def id(self) -> str | None:
        value = self.CustomerID if self.CustomerID is not msgspec.UNSET else self.ID
        if value is None or value is msgspec.UNSET:
            return None
        if type(value) is int:
            return str(value)  # nearly always digits, as a number or as text: storable as they are
        if type(value) is str and value.isascii() and value.isdigit() and len(value) <= MAX_ID_LENGTH:
            return value
        return storable_id(str(value))


def record_id(record: Any) -> str | None:
    """The CRM id a wire record names (a record as parsed, or its JSON as sent: msgspec.Raw), as
    text fit to key an error row (None when it has none)."""
    if isinstance(record, msgspec.Raw):
        try:
            return msgspec.json.decode(record, type=RecordIds).id()
        except (msgspec.MsgspecError, ValueError):
            return None
    if isinstance(record, dict):
        value = record.get("CustomerID", record.get("ID"))
        return None if value is None else storable_id(str(value))
    return None


def load_record(raw: msgspec.Raw) -> Any:
    """A record's JSON as sent, parsed: by msgspec, or what it refuses (a lone surrogate, NaN) by
    ``json``, as the hook decodes a whole answer; InvalidRecord when neither can."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.MsgspecError, ValueError):
        pass
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except ValueError:
        raise InvalidRecord("the record is not valid JSON") from None


RowDecoder = Callable[[Any], list[Any]]  # a wire record to a row; raises InvalidRecord


class PulledPage:
    """One page of a CRM listing: as the records SUMIT sent, with the API profile's decoder
    (decoded when first asked for, so a pull can skip the records it already has); as
    customers; or as rows (the profile mapped the records straight to rows). Each form is made
    from the one before when first asked for."""

    __slots__ = ("number", "_rejected", "_customers", "_rows", "_records", "_decode", "_ids", "_raw", "hashes")

    def __init__(self, number: int, customers: list[CrmCustomer] | None = None,
                 rejected: list[RejectedRecord] | None = None, *, rows: list[list[Any]] | None = None,
                 records: list[Any] | None = None, decode: RowDecoder | None = None,
                 ids: Sequence[str | None] | None = None, raw: bool = False) -> None:
        if sum(form is not None for form in (customers, rows, records)) != 1:
            raise ValueError("a PulledPage is made of customers, of rows or of records")
        if records is not None and decode is None:
            raise ValueError("a PulledPage of records needs their decoder")
        self.number = number
        self._rejected = rejected if rejected is not None else (None if records is not None else [])
        self._customers, self._rows, self._records, self._decode = customers, rows, records, decode
        self._ids = list(ids) if ids is not None else None
        self._raw = raw  # the records are msgspec.Raw: each one's JSON as sent, parsed when decoded
        self.hashes: list[str] | None = None  # of the records, once hash_records ran

    # -- the records as SUMIT sent them ----------------------------------------------------

    @property
    def records(self) -> list[Any] | None:
        """The wire records (None for a page made of customers or rows)."""
        return self._records

    @property
    def ids(self) -> list[str | None]:
        """The CRM id each record names (records form), in page order."""
        if self._ids is None:
            self._ids = [record_id(r) for r in self._records or ()]
        return self._ids

    def hash_records(self, salt: str) -> None:
        """Hash each record as sent (crmsync.core.fingerprint.record_hashes); the rows decoded
        after this carry their record's hash last (RECORD_HASH)."""
        if self._records is not None and self._rows is None:
            self.hashes = record_hashes(self._records, salt)

    def subset(self, positions: Sequence[int]) -> PulledPage:
        """A page of these records only (by position), with their hashes; records form only."""
        records = self._records or []
        page = PulledPage(self.number, records=[records[i] for i in positions], decode=self._decode,
                          ids=[self.ids[i] for i in positions], raw=self._raw)
        if self.hashes is not None:
            page.hashes = [self.hashes[i] for i in positions]
        return page

    @property
    def fetched(self) -> int:
        """Records the page held, valid or not."""
        if self._records is not None:
            return len(self._records)
        return len(self) + len(self.rejected)

    # -- decoded ----------------------------------------------------------------------------

    def _decode_records(self) -> None:
        decode, hashes = self._decode, self.hashes
        rows, rejected = [], []
        assert decode is not None
        raw_records = self._raw
        for position, raw in enumerate(self._records or ()):
            try:
                if raw_records:
                    raw = load_record(raw)
                row = decode(raw)
            except InvalidRecord as exc:
                rejected.append(RejectedRecord(reason=str(exc), sumit_id=record_id(raw), excerpt=excerpt(raw)))
                continue
            if hashes is not None:
                if len(row) == EXTRAS:
                    row.append(None)
                row.append(hashes[position])
            rows.append(row)
        self._rows, self._rejected, self._records = rows, rejected, None

    @property
    def rejected(self) -> list[RejectedRecord]:
        """The records that could not be decoded, with the reason."""
        if self._rejected is None:
            self._decode_records()
        return self._rejected  # type: ignore[return-value]

    @property
    def customers(self) -> list[CrmCustomer]:
        if self._customers is None:
            self._customers = [row_customer(row) for row in self.rows]
        return self._customers

    @property
    def rows(self) -> list[list[Any]]:
        if self._rows is None:
            if self._records is not None:
                self._decode_records()
            else:
                self._rows = [customer_row(c) for c in self._customers or ()]
        return self._rows  # type: ignore[return-value]

    def __len__(self) -> int:
        """The customers on the page (valid records; the rejected ones are not counted)."""
        if self._rows is None and self._customers is None:
            self._decode_records()
        return len(self._rows if self._rows is not None else self._customers or ())

    def __repr__(self) -> str:
        return f"PulledPage(number={self.number}, customers={len(self)}, rejected={len(self.rejected)})"
