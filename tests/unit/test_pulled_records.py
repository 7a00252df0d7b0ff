"""A page as SUMIT sent it (crmsync.core.pulled.PulledPage, records form) and the record hashes
a re-pull compares (crmsync.core.fingerprint.record_hashes)."""

from __future__ import annotations

from crmsync.core.errors import InvalidRecord
from crmsync.core.fingerprint import record_hashes
from crmsync.core.pulled import RECORD_HASH, PulledPage, customer_row, row_customer
from crmsync.sumit.api.guide import GuideProfile

RECORDS = [{"CustomerID": 1, "Name": "Alpha", "Email": "a@example.com"},
           {"CustomerID": 2, "Name": "Beta"},
           {"CustomerID": 3},  # no name: refused
           {"CustomerID": 4, "Name": "Delta", "City": "Haifa"}]


def counting(decode):
    calls = []

    def decoder(raw):
        calls.append(raw)
        return decode(raw)
    return decoder, calls


def test_records_are_decoded_only_when_asked_and_carry_their_hash():
    decode, calls = counting(GuideProfile().decode_row)
    page = PulledPage(7, records=list(RECORDS), decode=decode)
    page.hash_records("salt")
    assert page.ids == ["1", "2", "3", "4"] and page.fetched == 4 and not calls
    assert len(page) == 3 and len(calls) == 4
    assert [r.sumit_id for r in page.rejected] == ["3"] and "name" in page.rejected[0].reason.lower()
    hashes = record_hashes(RECORDS, "salt")
    assert [row[RECORD_HASH] for row in page.rows] == [hashes[0], hashes[1], hashes[3]]
    # the hash travels through a customer and back to a row
    assert customer_row(row_customer(page.rows[2]))[RECORD_HASH] == hashes[3]


def test_a_subset_decodes_only_its_records():
    decode, calls = counting(GuideProfile().decode_row)
    page = PulledPage(1, records=list(RECORDS), decode=decode)
    page.hash_records("salt")
    part = page.subset([1, 3])
    assert part.ids == ["2", "4"] and [c.sumit_id for c in part.customers] == ["2", "4"]
    assert len(calls) == 2
    assert [c.record_hash for c in part.customers] == [page.hashes[1], page.hashes[3]]


def test_a_profile_without_rows_decodes_through_its_customers_to_the_same_rows():
    profile = GuideProfile()
    by_row = PulledPage(0, records=list(RECORDS), decode=profile.decode_row)
    by_customer = PulledPage(0, records=list(RECORDS), decode=lambda raw: customer_row(profile.decode_customer(raw)))
    for page in (by_row, by_customer):
        page.hash_records("salt")
    assert [c.sumit_id for c in by_customer.customers] == ["1", "2", "4"]
    assert [r.sumit_id for r in by_customer.rejected] == ["3"]
    assert [row[:RECORD_HASH - 1] for row in by_customer.rows] == [row[:RECORD_HASH - 1] for row in by_row.rows]
    assert [row[RECORD_HASH] for row in by_customer.rows] == [row[RECORD_HASH] for row in by_row.rows]


def test_hashes_differ_by_content_and_by_salt_and_agree_otherwise():
    a = record_hashes(RECORDS, "one")
    assert a == record_hashes([dict(r) for r in RECORDS], "one")
    assert len(set(a)) == len(a)
    assert record_hashes(RECORDS, "two") != a, "another mapping (salt) is another hash"
    changed = [dict(r) for r in RECORDS]
    changed[1]["Name"] = "Beta!"
    assert [x == y for x, y in zip(record_hashes(changed, "one"), a)] == [True, False, True, True]
    # a value msgspec cannot write still hashes (as its text)
    assert len(record_hashes([{"CustomerID": 1, "When": object()}], "one")[0]) == 32


def test_an_invalid_record_raising_is_rejected_not_raised():
    def decode(raw):
        raise InvalidRecord("broken")
    page = PulledPage(2, records=[{"CustomerID": "x"}], decode=decode)
    assert len(page) == 0 and page.rejected[0].reason == "broken" and page.rejected[0].sumit_id == "x"


def test_a_record_with_a_lone_surrogate_still_hashes():
    # such a record reaches the pull parsed (msgspec refuses it, json takes it), not as sent
    assert len(record_hashes([{"CustomerID": 1, "Name": "half \ud83d emoji"}], "one")[0]) == 32
