"""The sandbox's customer store: customers in the guide's shape, in insertion order, the raw
records listed after them, and how a listing pages through both.

Not locked itself: ``SandboxState`` calls it under its one lock. Stored customer dicts are
never mutated (an update stores a new dict), so a page can be JSON-encoded outside the lock
without racing an update.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crmsync.sandbox.faults import SandboxInputError

ID_KEY = "CustomerID"
GUIDE_KEYS = (ID_KEY, "Name", "Email", "Phone", "CompanyName", "TaxID", "Address", "City", "State", "Country",
              "ZipCode")
FIRST_CUSTOMER_ID = 100001


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class CustomerStore:
    """``customers`` maps str(CustomerID) to the record; ``order`` keeps the keys of the listed
    ones in insertion order (O(page) paging); ``raw`` holds the records listings return verbatim
    after them; ``archived`` holds the keys of archived customers.

    An archived customer stays in ``customers`` (a read by id still finds it) but leaves
    ``order``, so no listing shows it, as SUMIT's listings leave archived records out. Upserting
    it again (``store``) brings it back, at the end of the listing.
    """

    def __init__(self, *, numeric_ids: bool = False):
        self.numeric_ids = numeric_ids
        self.clear()

    def clear(self) -> None:
        """No customers, no raw records, ids from the first one again."""
        self.customers: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.raw: list[Any] = []
        self.next_id = FIRST_CUSTOMER_ID
        self.external_ids: dict[str, str] = {}  # rest profile: ExternalIdentifier -> key in customers
        self.archived: set[str] = set()

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

    def store(self, record: Any) -> Any:
        """Upsert: the given record becomes the stored one (by CustomerID, else new); return its id."""
        return self.replace(record)[0]

    def replace(self, record: Any) -> tuple[Any, dict[str, Any] | None, bool]:
        """``store``, also returning what it replaced (for triggers): (id, the record stored
        before, None when there was none; whether that one was archived). An archived
        customer stored again is no longer archived."""
        if not isinstance(record, dict):
            raise SandboxInputError(f"a customer must be a JSON object, not {record!r}")
        given = record.get(ID_KEY)
        customer_id = self._new_id() if is_blank(given) else self._canonical_id(given)
        key = str(customer_id)
        previous = self.customers.get(key)
        was_archived = key in self.archived
        if previous is None or was_archived:
            self.order.append(key)
            self.archived.discard(key)
        stored = {ID_KEY: customer_id}  # the id first, as SUMIT lists it
        stored.update(record)
        stored[ID_KEY] = customer_id
        self.customers[key] = stored
        return customer_id, previous, was_archived

    def merge(self, key: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Overwrite the keys in ``changes`` of the customer stored under ``key`` (the others,
        custom fields included, stay); return the record as it was, None when there is none."""
        stored = self.customers.get(key)
        if stored is not None:
            self.customers[key] = {**stored, **changes}
        return stored

    def delete(self, ids: Iterable[Any]) -> int:
        """Remove customers by id (unknown ids are ignored); return how many were removed."""
        return len(self.remove(ids))

    def remove(self, ids: Iterable[Any]) -> dict[str, dict[str, Any]]:
        """Remove customers by id (unknown ids are ignored); return the removed ones by key."""
        removed: dict[str, dict[str, Any]] = {}
        for customer_id in ids:
            key = str(customer_id)
            record = self.customers.pop(key, None)
            if record is not None:
                removed[key] = record
                self.archived.discard(key)
        if removed:
            self.order = [key for key in self.order if key in self.customers]
        return removed

    def archive(self, ids: Iterable[Any]) -> list[str]:
        """Archive customers by id (unknown and already archived ids are ignored): they leave
        every listing but a read by id still finds them. Return the keys archived now."""
        archived: list[str] = []
        for customer_id in ids:
            key = str(customer_id)
            if key in self.customers and key not in self.archived:
                self.archived.add(key)
                archived.append(key)
        if archived:
            self.order = [key for key in self.order if key not in self.archived]
        return archived

    def listed(self) -> list[dict[str, Any]]:
        """The listed customers in insertion order (raw and archived records excluded)."""
        return [self.customers[key] for key in self.order]

    def window(self, start: int, stop: int | None) -> list[Any]:
        """Customers then raw records, sliced as one sequence without copying either whole."""
        count = len(self.order)
        records: list[Any] = [self.customers[key] for key in self.order[start:stop]]
        raw_stop = None if stop is None else max(0, stop - count)
        return records + self.raw[max(0, start - count):raw_stop]

    def listing_length(self) -> int:
        """How many records a listing of everything holds: the customers, then the raw records."""
        return len(self.order) + len(self.raw)


def page_bounds(paging: Any, max_page_size: int) -> tuple[int, int]:
    """(StartIndex, page size capped at max_page_size) from a request's Paging object."""
    if not isinstance(paging, dict):
        raise SandboxInputError("Paging must be an object with StartIndex and PageSize")
    start = _paging_number(paging, "StartIndex", 0, minimum=0)
    size = _paging_number(paging, "PageSize", max_page_size, minimum=1)
    return start, min(size, max_page_size)


def _paging_number(paging: dict[str, Any], name: str, default: int, minimum: int) -> int:
    value = paging.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SandboxInputError(f"Paging.{name} must be an integer >= {minimum}")
    return value
