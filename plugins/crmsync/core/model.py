"""The profile-neutral shape of a customer, shared by the API adapters and the sync logic.

An API adapter turns whatever SUMIT sends into :class:`CrmCustomer` (and back); the merge
logic and the database code only ever see these types, so a new API profile changes
nothing outside its adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from crmsync.core.text import storable_id

# The local columns that mirror a SUMIT field, in a fixed order: this order is part of the
# fingerprint definition (see fingerprint.py and include/sql/schema.sql).
SYNCED_COLUMNS: tuple[str, ...] = (
    "name",
    "email",
    "phone",
    "company_name",
    "tax_id",
    "address",
    "city",
    "state",
    "country",
    "zip_code",
)

# A fields dict's values as a tuple in SYNCED_COLUMNS order, in one C call (KeyError when one
# is missing): the fingerprint and the page payload read every customer this way.
synced_values = itemgetter(*SYNCED_COLUMNS)

DEFAULT_COUNTRY = "IL"

Fields = dict[str, str | None]


@dataclass
class CrmCustomer:
    """A customer as the CRM holds it, in local column names. Treat it as immutable: its
    fingerprints are computed once. (Not ``frozen``: a frozen dataclass costs a pull of
    100,000 customers 0.1 s more to build, one ``object.__setattr__`` per field.)"""

    sumit_id: str
    fields: Fields
    custom: dict[str, Any] = field(default_factory=dict)
    changed_at: datetime | None = None  # when the CRM says it last changed, if it says
    external_id: int | None = None  # the local id crmsync created it with, when the CRM lists it
    # Columns the API profile cannot carry (rest: one mapped to no SUMIT property): the value in
    # ``fields`` is a placeholder, never read from the CRM, so the merge keeps the local one.
    not_carried: frozenset[str] = frozenset()

    # (fields, custom fields) fingerprints, computed once per record by
    # crmsync.core.fingerprint.customer_fingerprints: the page payload and the merge both read them.
    # Field rules (crmsync.core.field_rules) set them to those of the values the rules let in.
    fingerprints: tuple[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    # The fingerprint of ``fields`` as a new local row stores them, when it differs from
    # ``fingerprints[0]``: field rules hide the CRM's name from the comparison, yet a new row
    # still needs it. None: the same.
    row_fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)
    # The fingerprint of the fields as the CRM sent them, when field rules hid some (None: the same).
    original_fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)
    # The hash of the record SUMIT sent (crmsync.core.fingerprint.record_hashes), when the pull
    # computed it: stored with the fingerprints, so the next pull can skip the same record.
    record_hash: str | None = field(default=None, init=False, repr=False, compare=False)


def pulled_extras(customer: CrmCustomer) -> dict[str, Any] | None:
    """What a pulled customer carries beyond its values and fingerprints, as JSON for a page's
    encoding (crmsync.core.pulled), None when nothing (no field rule hid a value, every column
    carried): a held pull's listing must bring it back (:func:`restore_extras`)."""
    if customer.row_fingerprint is None and customer.original_fingerprint is None and not customer.not_carried:
        return None
    return {"row_fingerprint": customer.row_fingerprint, "original_fingerprint": customer.original_fingerprint,
            "not_carried": sorted(customer.not_carried)}


def restore_extras(customer: CrmCustomer, extras: dict[str, Any] | None) -> CrmCustomer:
    """``customer`` (decoded from a page's encoding) with the extras :func:`pulled_extras` wrote."""
    if extras:
        customer.row_fingerprint = extras.get("row_fingerprint")
        customer.original_fingerprint = extras.get("original_fingerprint")
        customer.not_carried = frozenset(extras.get("not_carried") or ())
    return customer


@dataclass(frozen=True)
class RejectedRecord:
    """A CRM record that cannot be synced, with the reason and a safe excerpt of it.

    ``sumit_id`` keys the record's row in crm_sync_errors, so it is made storable here,
    whoever read it off the wire: without NUL characters or lone surrogates, and None when
    it is too long to be an id (the row is then keyed by the excerpt's content).
    """

    reason: str
    sumit_id: str | None
    excerpt: dict[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "sumit_id", storable_id(self.sumit_id))


@dataclass(frozen=True)
class LocalCustomer:
    """A local row as the push needs it."""

    id: int
    sumit_id: str | None
    fields: Fields
    fingerprint: str  # fingerprint of ``fields`` as read, computed by the database


@dataclass(frozen=True)
class PushResult:
    """What SUMIT said about one pushed customer."""

    sumit_id: str | None
