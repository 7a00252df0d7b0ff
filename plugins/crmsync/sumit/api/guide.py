"""The ``guide`` profile: the endpoints named in the CRM synchronization guide."""

from __future__ import annotations

from datetime import datetime, timezone
from operator import itemgetter
from typing import Any

import msgspec

from crmsync.core.errors import InvalidRecord, SumitProtocolError
from crmsync.core.fingerprint import custom_fingerprint, fingerprint_values
from crmsync.core.mapping import clean_id, clean_json, clean_text, custom_field_name, finish_fields
from crmsync.core.model import DEFAULT_COUNTRY, SYNCED_COLUMNS, CrmCustomer, LocalCustomer, PushResult
from crmsync.core.pulled import RecordIds, customer_row
from crmsync.core.text import MAX_ID_LENGTH
from crmsync.sumit.api.base import Listing, data_section, raw_listing, records_ids

LIST_ENDPOINT = "/website/customers/getlist/"
UPDATE_ENDPOINT = "/website/customers/update/"

# local column -> guide key
FIELD_KEYS: dict[str, str] = {
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "company_name": "CompanyName",
    "tax_id": "TaxID",
    "address": "Address",
    "city": "City",
    "state": "State",
    "country": "Country",
    "zip_code": "ZipCode",
}
ID_KEY = "CustomerID"
# crmsync creates a customer with its local id under this key (a custom field to SUMIT), so a
# create whose answer was lost can be found in the listing instead of being sent again.
EXTERNAL_ID_KEY = "ExternalIdentifier"
_KNOWN_KEYS = frozenset(FIELD_KEYS.values()) | {ID_KEY, EXTERNAL_ID_KEY}
_FIELD_ITEMS = tuple(FIELD_KEYS.items())
# Keys some SUMIT accounts send with a record's last change; used by the newer-wins policy.
CHANGED_AT_KEYS = ("UpdatedAt", "LastUpdated", "LastModified", "ModifiedAt", "LastUpdate")

assert tuple(FIELD_KEYS) == SYNCED_COLUMNS

# decode_row's short way: a record holding exactly the guide's fields and its CustomerID.
_FIELD_NAMES = tuple(FIELD_KEYS.values())
_FIELD_VALUES = itemgetter(*_FIELD_NAMES)
_PLAIN_LENGTH = len(FIELD_KEYS) + 1
_COUNTRY = SYNCED_COLUMNS.index("country")
_NO_CUSTOM_FINGERPRINT = custom_fingerprint({})


class _RawData(msgspec.Struct):
    Customers: list[msgspec.Raw] | None | msgspec.UnsetType = msgspec.UNSET
    HasNextPage: Any = msgspec.UNSET


class _RawListing(msgspec.Struct):
    """A listing answer as :meth:`GuideProfile.parse_list` reads it, the records left unparsed."""

    Customers: list[msgspec.Raw] | None | msgspec.UnsetType = msgspec.UNSET
    HasNextPage: Any = msgspec.UNSET
    Data: _RawData | None = None


class _IdData(msgspec.Struct):
    Customers: list[RecordIds] | None | msgspec.UnsetType = msgspec.UNSET


class _IdListing(msgspec.Struct):
    """The same answer again, reading only each record's CRM id (one C call a page)."""

    Customers: list[RecordIds] | None | msgspec.UnsetType = msgspec.UNSET
    Data: _IdData | None = None


class GuideProfile:
    name = "guide"
    creates_are_idempotent = False  # no lookup key in the guide: a lost create is found by listing

    def list_request(self, start: int, size: int) -> tuple[str, dict[str, Any]]:
        return LIST_ENDPOINT, {"Paging": {"StartIndex": start, "PageSize": size}}

    def parse_list(self, answer: dict[str, Any], endpoint: str) -> Listing:
        data = data_section(answer)
        records = answer.get("Customers", data.get("Customers"))
        if not isinstance(records, list):
            raise SumitProtocolError(
                f"{endpoint} answered Success but without a Customers list; the listing cannot be trusted.",
                endpoint=endpoint,
            )
        has_next = answer.get("HasNextPage", data.get("HasNextPage", False))
        return Listing(records=records, has_next=has_next is True)

    def parse_raw_list(self, content: bytes) -> Listing | None:
        """:meth:`parse_list`'s listing with each record's JSON left as sent (msgspec.Raw); None
        when the answer is shaped otherwise (parse_list then says what is wrong)."""
        answer = raw_listing(content, _RawListing)
        if answer is None:
            return None
        data = answer.Data or _RawData()
        records = answer.Customers if answer.Customers is not msgspec.UNSET else data.Customers
        if not isinstance(records, list):
            return None
        has_next = answer.HasNextPage if answer.HasNextPage is not msgspec.UNSET else data.HasNextPage
        ids = raw_listing(content, _IdListing)  # None when a record is not an object: read one by one then
        if ids is not None:
            id_records = ids.Customers if ids.Customers is not msgspec.UNSET else (ids.Data or _IdData()).Customers
            ids = records_ids(id_records) if isinstance(id_records, list) else None
        return Listing(records=records, has_next=has_next is True, raw=True, ids=ids)

    def decode_row(self, raw: Any) -> list[Any]:
        """A wire record as a pull row (crmsync.core.pulled): :meth:`decode_customer`'s result without
        building the customer. Nearly every record holds the guide's fields as printable text (or
        null, or not at all) and its CustomerID as a number or printable text: it needs only
        stripping, and takes a short way, a few C calls for the ten fields. Any other record takes
        decode_customer's (tests/unit check that both agree on every kind of record)."""
        if type(raw) is not dict:
            return customer_row(self.decode_customer(raw))
        try:
            values = _FIELD_VALUES(raw)
            complete = True
        except KeyError:  # a field left out: as if null
            values, complete = tuple(map(raw.get, _FIELD_NAMES)), False
        try:
            plain = "|".join(values).isprintable()
        except TypeError:  # a null (it reads as empty text) or a value that is not text
            values = tuple("" if value is None else value for value in values)
            try:
                plain = "|".join(values).isprintable()
            except TypeError:
                plain = False
        wire_id = raw.get(ID_KEY)
        if type(wire_id) is int:
            sumit_id = str(wire_id)
        else:
            sumit_id = wire_id.strip() if type(wire_id) is str and wire_id.isprintable() else ""
        if not plain or not sumit_id or len(sumit_id) > MAX_ID_LENGTH:
            return customer_row(self.decode_customer(raw))
        fields = [value.strip() or None for value in values]
        if fields[0] is None:
            return customer_row(self.decode_customer(raw))  # which says the Name is missing
        if fields[_COUNTRY] is None:
            fields[_COUNTRY] = DEFAULT_COUNTRY
        if complete and len(raw) == _PLAIN_LENGTH:  # nothing but the fields and the id
            return [sumit_id, *fields, {}, fingerprint_values(fields), _NO_CUSTOM_FINGERPRINT, None, None, None]
        custom = _custom(raw)
        return [sumit_id, *fields, custom, fingerprint_values(fields), custom_fingerprint(custom), _changed_at(raw),
                _external_id(raw.get(EXTERNAL_ID_KEY)), None]

    def decode_customer(self, raw: Any) -> CrmCustomer:
        if not isinstance(raw, dict):
            raise InvalidRecord(f"record is a {type(raw).__name__}, not an object")
        sumit_id = clean_id(raw.get(ID_KEY))
        if sumit_id is None:
            raise InvalidRecord("record has no CustomerID")
        # clean_text's own fast path inlined: a printable string only needs stripping.
        fields = finish_fields({
            column: (value.strip() or None) if type(value := raw.get(key)) is str and value.isprintable()
            else clean_text(value, field_name=key)
            for column, key in _FIELD_ITEMS
        })
        return CrmCustomer(sumit_id=sumit_id, fields=fields, custom=_custom(raw), changed_at=_changed_at(raw),
                           external_id=_external_id(raw.get(EXTERNAL_ID_KEY)))

    def push_request(self, customer: LocalCustomer) -> tuple[str, dict[str, Any]]:
        record: dict[str, Any] = {}
        if customer.sumit_id:
            record[ID_KEY] = customer.sumit_id
        else:
            record[EXTERNAL_ID_KEY] = str(customer.id)
        fields = customer.fields
        for column, key in _FIELD_ITEMS:
            if column in fields:  # a field the field rules do not send is left out: SUMIT keeps its value
                record[key] = fields[column] or ""
        return UPDATE_ENDPOINT, {"Customer": record}

    def is_idempotent(self, customer: LocalCustomer) -> bool:
        """An update by CustomerID can be repeated; a create cannot (the guide has no lookup key)."""
        return customer.sumit_id is not None

    def parse_push(self, answer: dict[str, Any], endpoint: str) -> PushResult:
        value = data_section(answer).get(ID_KEY, answer.get(ID_KEY))
        try:
            return PushResult(sumit_id=clean_id(value))
        except InvalidRecord:
            raise SumitProtocolError(f"{endpoint} answered a CustomerID that is not an id", endpoint=endpoint) from None


def _custom(raw: dict[str, Any]) -> dict[str, Any]:
    """A record's custom fields: every key the guide does not name."""
    extra = raw.keys() - _KNOWN_KEYS  # most records have no custom field, or one or two
    return {custom_field_name(k): clean_json(v) for k, v in raw.items() if k in extra} if extra else {}


def _external_id(value: Any) -> int | None:
    """The local id a record was created with; anything but a positive whole number is ignored."""
    if value is None:
        return None
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return int(text) if text.isdigit() and text.isascii() and 0 < int(text) < 2**63 else None


def _changed_at(raw: dict[str, Any]) -> datetime | None:
    if raw.keys().isdisjoint(CHANGED_AT_KEYS):
        return None
    for key in CHANGED_AT_KEYS:
        value = raw.get(key)
        if isinstance(value, str) and value:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return None
