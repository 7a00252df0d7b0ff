"""A pulled page, and the row each pulled customer travels as to the database.

A pull moves 100,000 customers through Python; most of them are new or unchanged, and for
those the database needs their values, not objects. So an API profile may map a record
straight to a *row* — a list, by position:

    [CRM id, the SYNCED_COLUMNS in order, custom fields, fields fingerprint, custom-fields
     fingerprint, changed_at, external id, extras]

— and a :class:`CrmCustomer` is built only for the customers the merge must decide on (their
CRM copy changed) or when field rules apply. include/sql/pull_page.sql reads these positions.
(Computing the fingerprints in PostgreSQL instead was measured and dropped: 10-20 µs a row
there, 4 µs in Python; docs/performance.md.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crmsync.core.fingerprint import customer_fingerprints
from crmsync.core.model import SYNCED_COLUMNS, CrmCustomer, RejectedRecord, pulled_extras, restore_extras, synced_values

_N = len(SYNCED_COLUMNS)
CUSTOM, FINGERPRINT, CUSTOM_FINGERPRINT, CHANGED_AT, EXTERNAL_ID, EXTRAS = range(_N + 1, _N + 7)


def customer_row(c: CrmCustomer) -> list[Any]:
    """``c`` as a row."""
    return [c.sumit_id, *synced_values(c.fields), c.custom, *customer_fingerprints(c), c.changed_at, c.external_id,
            pulled_extras(c)]


def row_customer(row: list[Any]) -> CrmCustomer:
    """The customer a row holds (the row as :func:`customer_row` or an API profile made it, or
    as read back from its JSON: ``changed_at`` as ISO text then)."""
    changed_at = row[CHANGED_AT]
    if isinstance(changed_at, str):
        changed_at = datetime.fromisoformat(changed_at)
    c = CrmCustomer(row[0], dict(zip(SYNCED_COLUMNS, row[1:_N + 1])), row[CUSTOM], changed_at, row[EXTERNAL_ID])
    c.fingerprints = (row[FINGERPRINT], row[CUSTOM_FINGERPRINT])
    return restore_extras(c, row[EXTRAS] if len(row) > EXTRAS else None)


class PulledPage:
    """One page of a CRM listing, decoded by the API profile: as customers, or as rows (the
    profile mapped the records straight to rows); each form is made from the other when first
    asked for."""

    __slots__ = ("number", "rejected", "_customers", "_rows")

    def __init__(self, number: int, customers: list[CrmCustomer] | None = None,
                 rejected: list[RejectedRecord] | None = None, *, rows: list[list[Any]] | None = None) -> None:
        if (customers is None) == (rows is None):
            raise ValueError("a PulledPage is made of customers or of rows")
        self.number = number
        self.rejected = rejected if rejected is not None else []
        self._customers, self._rows = customers, rows

    @property
    def customers(self) -> list[CrmCustomer]:
        if self._customers is None:
            self._customers = [row_customer(row) for row in self._rows or ()]
        return self._customers

    @property
    def rows(self) -> list[list[Any]]:
        if self._rows is None:
            self._rows = [customer_row(c) for c in self._customers or ()]
        return self._rows

    def __len__(self) -> int:
        """The customers on the page (valid records; the rejected ones are not counted)."""
        return len(self._rows if self._rows is not None else self._customers or ())

    def __repr__(self) -> str:
        return f"PulledPage(number={self.number}, customers={len(self)}, rejected={len(self.rejected)})"
