import pytest

from crmsync.core.errors import InvalidRecord
from crmsync.core.mapping import clean_id, clean_json, clean_text, excerpt
from crmsync.core.model import LocalCustomer
from crmsync.sumit.api.guide import GuideProfile

guide = GuideProfile()


def record(**overrides):
    base = {
        "CustomerID": "100001", "Name": 'חברת אלפא בע"מ', "Email": "a@example.co.il", "Phone": "050-1234567",
        "CompanyName": "אלפא", "TaxID": "012345678", "Address": "רחוב הרצל 1", "City": "תל אביב",
        "State": "", "Country": "IL", "ZipCode": "6100001",
    }
    base.update(overrides)
    return base


def test_guide_record_maps_every_field_and_keeps_hebrew_and_leading_zeros():
    customer = guide.decode_customer(record())
    assert customer.sumit_id == "100001"
    assert customer.fields == {
        "name": 'חברת אלפא בע"מ', "email": "a@example.co.il", "phone": "050-1234567", "company_name": "אלפא",
        "tax_id": "012345678", "address": "רחוב הרצל 1", "city": "תל אביב", "state": None, "country": "IL",
        "zip_code": "6100001",
    }
    assert customer.custom == {}


def test_unknown_keys_become_custom_fields():
    customer = guide.decode_customer(record(Segment="VIP", **{"מקור": "אתר"}))
    assert customer.custom == {"Segment": "VIP", "מקור": "אתר"}


def test_missing_country_defaults_to_il():
    assert guide.decode_customer(record(Country=None)).fields["country"] == "IL"
    assert guide.decode_customer(record(Country="")).fields["country"] == "IL"
    assert guide.decode_customer(record(Country="US")).fields["country"] == "US"


@pytest.mark.parametrize("bad", [record(CustomerID=None), record(CustomerID=""), {k: v for k, v in record().items() if k != "CustomerID"}])
def test_record_without_customer_id_is_invalid(bad):
    with pytest.raises(InvalidRecord, match="no CustomerID"):
        guide.decode_customer(bad)


def test_record_without_name_is_invalid():
    with pytest.raises(InvalidRecord, match="no Name"):
        guide.decode_customer(record(Name="   "))


def test_numeric_ids_and_values_become_text():
    customer = guide.decode_customer(record(CustomerID=100001, TaxID=12345678, ZipCode=6100001.0))
    assert customer.sumit_id == "100001"
    assert customer.fields["tax_id"] == "12345678"
    assert clean_id(42.0) == "42"


def test_objects_where_text_is_expected_make_the_record_invalid():
    with pytest.raises(InvalidRecord, match="Email holds a dict"):
        guide.decode_customer(record(Email={"x": 1}))


def test_nul_characters_are_removed_and_blanks_are_null():
    assert clean_text("ab\x00c ", field_name="Name") == "abc"
    assert clean_text("  ", field_name="Name") is None
    assert clean_json({"k\x00": ["v\x00", {"n": "\x00"}]}) == {"k": ["v", {"n": ""}]}


def test_push_request_carries_every_field_and_the_id_when_known():
    local = LocalCustomer(id=7, sumit_id="100001", fields=guide.decode_customer(record()).fields, fingerprint="x")
    endpoint, body = guide.push_request(local)
    assert endpoint == "/website/customers/update/"
    assert body["Customer"]["CustomerID"] == "100001"
    assert body["Customer"]["TaxID"] == "012345678"
    assert body["Customer"]["State"] == ""  # a missing value travels as an empty string
    new = LocalCustomer(id=8, sumit_id=None, fields=local.fields, fingerprint="x")
    assert "CustomerID" not in guide.push_request(new)[1]["Customer"]


def test_round_trip_local_to_crm_and_back_keeps_every_field():
    original = guide.decode_customer(record(Segment="VIP"))
    local = LocalCustomer(id=1, sumit_id=original.sumit_id, fields=original.fields, fingerprint="x")
    _, body = guide.push_request(local)
    again = guide.decode_customer(body["Customer"])
    assert again.fields == original.fields


def test_push_answer_id_is_read_from_data_or_top_level():
    assert guide.parse_push({"Status": "Success", "Data": {"CustomerID": 5}}, "e").sumit_id == "5"
    assert guide.parse_push({"Status": "Success", "CustomerID": "6"}, "e").sumit_id == "6"
    assert guide.parse_push({"Status": "Success"}, "e").sumit_id is None


def test_changed_at_is_read_when_the_crm_sends_it():
    customer = guide.decode_customer(record(UpdatedAt="2026-11-20T10:00:00Z"))
    assert customer.changed_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert guide.decode_customer(record(UpdatedAt="yesterday")).changed_at is None


def test_excerpt_is_short_and_json_safe():
    bad = {"Name": "x" * 10_000, "Nested": {"a": [1, 2]}, "Nul": "a\x00b"}
    short = excerpt(bad)
    assert len(short["Name"]) == 200
    assert short["Nested"] == '{"a": [1, 2]}'
    assert short["Nul"] == "ab"
