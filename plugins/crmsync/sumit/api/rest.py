"""The ``rest`` profile: SUMIT's published REST API (what a SUMIT account answers today).

Pull lists the customers folder through ``/crm/data/listentities/``; every property value
arrives as a list. Push updates a customer that has a SUMIT id and creates one that has
none, with the local id as ``ExternalIdentifier`` and ``SearchMode`` 2, so a create that is
retried finds the customer it already made instead of making a second one.

company_name, state and country have no typed field in SUMIT: they travel as properties of
the customers folder, by default ``CompanyName``, ``State`` and ``Country``, and are read back
into their columns. A real folder may name them otherwise or lack them (and SUMIT may refuse a
push naming a property the folder lacks), so the connection's ``extra.property_fields`` says
which property carries each (crmsync.sumit.connection); a column mapped to none is neither
read nor sent (``CrmCustomer.not_carried``: the pull keeps the local value). Every other
property (``Property_<n>``, named ones, Hebrew names included) is a custom field and lands
in ``metadata``.

A push leaves out the keys of the fields the field rules do not send (crmsync.core.field_rules);
SUMIT's documentation does not say what an update does with an absent key (the sandbox keeps
the stored value).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from crmsync.core.errors import InvalidRecord, SumitProtocolError
from crmsync.core.mapping import MAX_ID_LENGTH, clean_id, clean_json, clean_text, custom_field_name, finish_fields
from crmsync.core.model import CrmCustomer, LocalCustomer, PushResult
from crmsync.core.pulled import RecordIds
from crmsync.sumit.api.base import Listing, data_section, raw_listing, records_ids
from crmsync.sumit.connection import DEFAULT_PROPERTY_FIELDS

LIST_ENDPOINT = "/crm/data/listentities/"
UPDATE_ENDPOINT = "/accounting/customers/update/"
CREATE_ENDPOINT = "/accounting/customers/create/"
GET_ENDPOINT = "/crm/data/getentity/"
SUBSCRIBE_ENDPOINT = "/triggers/triggers/subscribe/"
UNSUBSCRIBE_ENDPOINT = "/triggers/triggers/unsubscribe/"
# SUMIT answers a getentity for an id it does not have with a failure envelope; its wording is
# not documented, so these words (English and Hebrew) are what tells "gone" from another refusal.
_NOT_FOUND = re.compile(r"not found|does not exist|no such|deleted|לא נמצא|לא קיים|נמחק", re.I)
SEARCH_BY_EXTERNAL_IDENTIFIER = 2  # Accounting_Typed_CustomerSearchMode.ExternalIdentifier
MAX_PAGE_SIZE, MIN_PAGE_SIZE = 1000, 10

# local column -> (entity property when pulling, Details key when pushing)
TYPED_FIELDS: dict[str, tuple[str, str]] = {
    "name": ("Customers_FullName", "Name"),
    "email": ("Customers_EmailAddress", "EmailAddress"),
    "phone": ("Customers_Phone", "Phone"),
    "tax_id": ("Customers_CompanyNumber", "CompanyNumber"),
    "address": ("Customers_Address", "Address"),
    "city": ("Customers_City", "City"),
    "zip_code": ("Customers_ZipCode", "ZipCode"),
}
# local column -> property name, for the columns SUMIT has no typed field for (the default of
# the connection's extra.property_fields)
PROPERTY_FIELDS: dict[str, str] = {column: prop for column, prop in DEFAULT_PROPERTY_FIELDS.items() if prop}
_TYPED_NOT_CUSTOM = frozenset({"ID", "Folder"} | {p for p, _ in TYPED_FIELDS.values()})


def _first(value: Any) -> Any:
    """Property values arrive as lists; the sync keeps the first."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _wire_id(sumit_id: str) -> int | str:
    """SUMIT's ids are numbers: send one as a number when that loses nothing ("00123" stays text)."""
    if sumit_id.isascii() and sumit_id.isdigit() and len(sumit_id) <= MAX_ID_LENGTH and str(int(sumit_id)) == sumit_id:
        return int(sumit_id)
    return sumit_id


class _RawData(msgspec.Struct):
    Entities: list[msgspec.Raw]
    HasNextPage: Any = None


class _RawListing(msgspec.Struct):
    """A listing answer as :meth:`RestProfile.parse_list` reads it, the entities left unparsed."""

    Data: _RawData


class _IdData(msgspec.Struct):
    Entities: list[RecordIds]


class _IdListing(msgspec.Struct):
    """The same answer again, reading only each entity's CRM id (one C call a page)."""

    Data: _IdData


class RestProfile:
    name = "rest"
    creates_are_idempotent = True  # SearchMode 2 finds the customer created with this ExternalIdentifier

    def __init__(self, customers_folder: str | None = None, property_fields: dict[str, str | None] | None = None):
        self.customers_folder = customers_folder
        mapping = {**DEFAULT_PROPERTY_FIELDS, **(property_fields or {})}
        # local column -> the folder property carrying it; the columns mapped to none are not carried
        self.property_fields: dict[str, str] = {column: prop for column, prop in mapping.items() if prop}
        self.not_carried = frozenset(column for column, prop in mapping.items() if not prop)
        self._not_custom = _TYPED_NOT_CUSTOM | set(self.property_fields.values())

    def list_request(self, start: int, size: int) -> tuple[str, dict[str, Any]]:
        size = max(MIN_PAGE_SIZE, min(size, MAX_PAGE_SIZE))
        return LIST_ENDPOINT, {"Folder": self.customers_folder, "LoadProperties": True,
                               "Paging": {"StartIndex": start, "PageSize": size}}

    def parse_list(self, answer: dict[str, Any], endpoint: str) -> Listing:
        data = data_section(answer)
        entities = data.get("Entities")
        if not isinstance(entities, list):
            raise SumitProtocolError(
                f"{endpoint} answered Success but without a Data.Entities list; the listing cannot be trusted.",
                endpoint=endpoint,
            )
        return Listing(records=entities, has_next=data.get("HasNextPage") is True)

    def parse_raw_list(self, content: bytes) -> Listing | None:
        """:meth:`parse_list`'s listing with each entity's JSON left as sent (msgspec.Raw); None
        when the answer is shaped otherwise (parse_list then says what is wrong)."""
        answer = raw_listing(content, _RawListing)
        if answer is None:
            return None
        ids = raw_listing(content, _IdListing)  # None when an entity is not an object: read one by one then
        return Listing(records=answer.Data.Entities, has_next=answer.Data.HasNextPage is True, raw=True,
                       ids=records_ids(ids.Data.Entities) if ids is not None else None)

    def decode_customer(self, raw: Any) -> CrmCustomer:
        if not isinstance(raw, dict):
            raise InvalidRecord(f"record is a {type(raw).__name__}, not an object")
        sumit_id = clean_id(_first(raw.get("ID")))
        if sumit_id is None:
            raise InvalidRecord("record has no CustomerID (entity ID)")
        values = {column: clean_text(_first(raw.get(prop)), field_name=prop) for column, (prop, _) in TYPED_FIELDS.items()}
        values.update({column: clean_text(_first(raw.get(prop)), field_name=prop)
                       for column, prop in self.property_fields.items()})
        not_custom = self._not_custom
        custom = {custom_field_name(k): clean_json(_first(v) if isinstance(v, list) and len(v) == 1 else v)
                  for k, v in raw.items() if k not in not_custom}
        # finish_fields puts None in a column not carried (IL for the country): a placeholder
        return CrmCustomer(sumit_id=sumit_id, fields=finish_fields(values), custom=custom, not_carried=self.not_carried)

    def push_request(self, customer: LocalCustomer) -> tuple[str, dict[str, Any]]:
        fields = customer.fields  # a field the field rules do not send is absent: its key is left out
        details: dict[str, Any] = {key: fields[column] or "" for column, (_, key) in TYPED_FIELDS.items()
                                   if column in fields}
        properties = {prop: fields[column] or "" for column, prop in self.property_fields.items() if column in fields}
        if properties:
            details["Properties"] = properties
        if customer.sumit_id:
            details["ID"] = _wire_id(customer.sumit_id)
            return UPDATE_ENDPOINT, {"Details": details}
        details["ExternalIdentifier"] = str(customer.id)
        details["SearchMode"] = SEARCH_BY_EXTERNAL_IDENTIFIER
        return CREATE_ENDPOINT, {"Details": details}

    def is_idempotent(self, customer: LocalCustomer) -> bool:
        return True  # updates by id; creates find by ExternalIdentifier

    # -- one customer, and SUMIT's triggers -------------------------------------------------

    def get_request(self, sumit_id: str) -> tuple[str, dict[str, Any]]:
        """Endpoint and body that read one customer fresh (a trigger names it)."""
        return GET_ENDPOINT, {"EntityID": _wire_id(sumit_id), "Folder": self.customers_folder, "IncludeFields": True}

    def parse_get(self, answer: dict[str, Any], endpoint: str) -> dict[str, Any]:
        """The entity of a getentity answer, as listentities would list it."""
        entity = data_section(answer).get("Entity")
        if not isinstance(entity, dict):
            raise SumitProtocolError(f"{endpoint} answered Success but without a Data.Entity object.", endpoint=endpoint)
        return entity

    @staticmethod
    def is_not_found(message: str) -> bool:
        """Whether a getentity refusal says the entity is not there (deleted), not something else."""
        return bool(_NOT_FOUND.search(message))

    @staticmethod
    def is_archived(entity: dict[str, Any]) -> bool:
        """An archived entity is still readable, but no longer listed: the sync treats it as gone."""
        value = entity.get("IsArchived", entity.get("Archived"))
        return bool(value[0] if isinstance(value, list) and value else value) is True

    def subscribe_request(self, url: str, trigger_type: str, view: str | None) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"URL": url, "Folder": self.customers_folder, "TriggerType": trigger_type}
        if view:
            body["View"] = view
        return SUBSCRIBE_ENDPOINT, body

    def unsubscribe_request(self, url: str) -> tuple[str, dict[str, Any]]:
        return UNSUBSCRIBE_ENDPOINT, {"URL": url}

    def parse_push(self, answer: dict[str, Any], endpoint: str) -> PushResult:
        value = data_section(answer).get("CustomerID")
        try:
            return PushResult(sumit_id=clean_id(value))
        except InvalidRecord:
            raise SumitProtocolError(f"{endpoint} answered a CustomerID that is not an id", endpoint=endpoint) from None
