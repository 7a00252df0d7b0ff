"""The ``rest`` profile: SUMIT's published REST API (what a SUMIT account answers today).

Pull lists the customers folder through ``/crm/data/listentities/``; every property value
arrives as a list. Push updates a customer that has a SUMIT id and creates one that has
none, with the local id as ``ExternalIdentifier`` and ``SearchMode`` 2, so a create that is
retried finds the customer it already made instead of making a second one.

company_name, state and country have no typed field in SUMIT: they travel as the
properties ``CompanyName``, ``State`` and ``Country`` and are read back into their columns.
Every other property (``Property_<n>``, named ones, Hebrew names included) is a custom
field and lands in ``metadata``.
"""

from __future__ import annotations

from typing import Any

from crmsync.api.base import Listing, data_section
from crmsync.errors import InvalidRecord, SumitProtocolError
from crmsync.mapping import MAX_ID_LENGTH, clean_id, clean_json, clean_text, custom_field_name, finish_fields
from crmsync.model import CrmCustomer, LocalCustomer, PushResult

LIST_ENDPOINT = "/crm/data/listentities/"
UPDATE_ENDPOINT = "/accounting/customers/update/"
CREATE_ENDPOINT = "/accounting/customers/create/"
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
# local column -> property name, for the columns SUMIT has no typed field for
PROPERTY_FIELDS: dict[str, str] = {"company_name": "CompanyName", "state": "State", "country": "Country"}
_NOT_CUSTOM = {"ID", "Folder"} | {p for p, _ in TYPED_FIELDS.values()} | set(PROPERTY_FIELDS.values())


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


class RestProfile:
    name = "rest"
    creates_are_idempotent = True  # SearchMode 2 finds the customer created with this ExternalIdentifier

    def __init__(self, customers_folder: str | None = None):
        self.customers_folder = customers_folder

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

    def decode_customer(self, raw: Any) -> CrmCustomer:
        if not isinstance(raw, dict):
            raise InvalidRecord(f"record is a {type(raw).__name__}, not an object")
        sumit_id = clean_id(_first(raw.get("ID")))
        if sumit_id is None:
            raise InvalidRecord("record has no CustomerID (entity ID)")
        values = {column: clean_text(_first(raw.get(prop)), field_name=prop) for column, (prop, _) in TYPED_FIELDS.items()}
        values.update({column: clean_text(_first(raw.get(prop)), field_name=prop) for column, prop in PROPERTY_FIELDS.items()})
        custom = {custom_field_name(k): clean_json(_first(v) if isinstance(v, list) and len(v) == 1 else v)
                  for k, v in raw.items() if k not in _NOT_CUSTOM}
        return CrmCustomer(sumit_id=sumit_id, fields=finish_fields(values), custom=custom)

    def push_request(self, customer: LocalCustomer) -> tuple[str, dict[str, Any]]:
        details: dict[str, Any] = {key: customer.fields.get(column) or "" for column, (_, key) in TYPED_FIELDS.items()}
        details["Properties"] = {prop: customer.fields.get(column) or "" for column, prop in PROPERTY_FIELDS.items()}
        if customer.sumit_id:
            details["ID"] = _wire_id(customer.sumit_id)
            return UPDATE_ENDPOINT, {"Details": details}
        details["ExternalIdentifier"] = str(customer.id)
        details["SearchMode"] = SEARCH_BY_EXTERNAL_IDENTIFIER
        return CREATE_ENDPOINT, {"Details": details}

    def is_idempotent(self, customer: LocalCustomer) -> bool:
        return True  # updates by id; creates find by ExternalIdentifier

    def parse_push(self, answer: dict[str, Any], endpoint: str) -> PushResult:
        value = data_section(answer).get("CustomerID")
        try:
            return PushResult(sumit_id=clean_id(value))
        except InvalidRecord:
            raise SumitProtocolError(f"{endpoint} answered a CustomerID that is not an id", endpoint=endpoint) from None
