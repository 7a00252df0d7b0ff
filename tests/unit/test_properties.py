"""Property-based tests of the pure sync logic (hypothesis): mapping round trips under both
API profiles, hostile wire records, and the three-way merge's idempotence.

Deterministic (``derandomize``, no example database) so a run is reproducible and leaves
no files behind; each property is small enough for the whole module to take a few seconds.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crmsync.core.errors import InvalidRecord
from crmsync.core.fingerprint import custom_fingerprint, fields_fingerprint, fingerprint_values
from crmsync.core.mapping import MAX_ID_LENGTH, clean_id, excerpt
from crmsync.core.merge import ConflictPolicy, Outcome, PullDecision, SyncState, plan_pull
from crmsync.core.model import DEFAULT_COUNTRY, SYNCED_COLUMNS, CrmCustomer, LocalCustomer, RejectedRecord
from crmsync.core.pulled import customer_row, row_customer
from crmsync.sandbox import SandboxState
from crmsync.sumit.api.guide import GuideProfile
from crmsync.sumit.api.rest import RestProfile

PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                    suppress_health_check=[HealthCheck.too_slow])
PROFILES = {"guide": GuideProfile(), "rest": RestProfile(customers_folder="customers")}
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)

# What an Israeli CRM really holds (see /work/shared/sumit-api.md, "Data you will meet").
SAMPLES = ['חברת אלפא בע"מ', "ג׳רבי ושות׳", "מוסך ״הגליל״", "\u200fרח׳ הרצל 1", "O'Brien & Sons",
           '"quoted"', "😀", "👨\u200d👩\u200d👧 family", "012345678", "000000018", "0501234567", "+972501234567",
           "Robert'); DROP TABLE sumit_customers;--", "x" * 300]
# Values a hostile server may send where text is expected.
HOSTILE_TEXT = ["", "   ", "\x00", "a\x00b", " padded ", "\ud83d", "cut \ud83d", "\udc00x", "\t\n"]


# The wire names, as /work/shared/sumit-api.md and docs/api-profiles.md give them (not as the adapters do).
GUIDE_KEYS = {"CustomerID", "Name", "Email", "Phone", "CompanyName", "TaxID", "Address", "City", "State", "Country",
              "ZipCode", "ExternalIdentifier"}  # the last: the local id a guide create carries (idempotency key)
REST_LISTING_KEYS = {"ID", "Folder", "Customers_FullName", "Customers_EmailAddress", "Customers_Phone",
                     "Customers_CompanyNumber", "Customers_Address", "Customers_City", "Customers_ZipCode",
                     "CompanyName", "State", "Country"}


def storable(text: str) -> bool:
    """What PostgreSQL text can hold: valid UTF-8 without NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


# -- strategies ---------------------------------------------------------------------------------

any_text = st.one_of(st.sampled_from(SAMPLES), st.text(min_size=1, max_size=40), st.from_regex(r"0[0-9]{8}", fullmatch=True))
# A value as a local row holds it after a sync: no NUL (PostgreSQL has none), trimmed, non-empty.
clean_value = any_text.map(lambda s: s.replace("\x00", "").strip()).filter(bool)
optional_value = st.one_of(st.none(), clean_value)


@st.composite
def local_fields(draw):
    fields = {column: draw(optional_value) for column in SYNCED_COLUMNS}
    fields["name"] = draw(clean_value)  # the one required column
    return fields


text_like = st.one_of(any_text, st.sampled_from(HOSTILE_TEXT))
containers = st.one_of(st.lists(st.one_of(st.none(), any_text, st.integers()), max_size=3),
                       st.dictionaries(any_text, any_text, max_size=2))
# Mostly text, as a server sends it; one value in ten a number, boolean or null, one in ten a container.
field_value = st.one_of(*[text_like] * 8, st.one_of(st.none(), st.integers(), st.floats(), st.booleans()), containers)
custom_value = st.one_of(st.none(), text_like, st.integers(), st.floats(), st.booleans(), containers)
valid_ids = st.one_of(st.integers(min_value=1, max_value=10**20), st.from_regex(r"[0-9]{1,12}", fullmatch=True))
hostile_id = st.one_of(valid_ids, valid_ids, valid_ids, st.integers(min_value=-5, max_value=0), st.floats(),
                       st.booleans(), st.none(), st.sampled_from(HOSTILE_TEXT + ["7\x00", " 42 ", "1" * 500]),
                       st.lists(st.integers(), max_size=2))


@st.composite
def hostile_guide_record(draw):
    keys = draw(st.sets(st.sampled_from(["Email", "Phone", "CompanyName", "TaxID", "Address", "City", "State",
                                         "Country", "ZipCode"]), max_size=5))
    record = {key: draw(field_value) for key in ["Name", *sorted(keys)]}
    record["CustomerID"] = draw(hostile_id)
    for key in draw(st.lists(st.one_of(any_text, st.sampled_from(HOSTILE_TEXT + ["last_synced_at", "name"])),
                             max_size=3)):
        record[key] = draw(custom_value)
    return record


@st.composite
def hostile_rest_entity(draw):
    """A listentities entity: every property value a list, usually of one item, sometimes not."""
    guide = draw(hostile_guide_record())
    names = {"CustomerID": "ID", "Name": "Customers_FullName", "Email": "Customers_EmailAddress",
             "Phone": "Customers_Phone", "TaxID": "Customers_CompanyNumber", "Address": "Customers_Address",
             "City": "Customers_City", "ZipCode": "Customers_ZipCode"}
    wrap = st.sampled_from([lambda v: [v], lambda v: v, lambda v: [], lambda v: [v, v]])
    return {names.get(k, k): draw(wrap)(v) for k, v in guide.items()}


# -- the wire, built the way the sandbox builds it ------------------------------------------------


def through_sandbox(profile_name: str, pushes: list[LocalCustomer]) -> tuple[str, object]:
    """Send each push to a sandbox's store as SUMIT would receive it; return the id the last
    answer carried and the record the listing then shows for it (a getlist record or an entity)."""
    profile = PROFILES[profile_name]
    state = SandboxState(api_key="property-key")
    answer_id = None
    for customer in pushes:
        if answer_id is not None and customer.sumit_id is None:
            customer = LocalCustomer(customer.id, answer_id, customer.fields, customer.fingerprint)
        endpoint, body = profile.push_request(customer)
        if profile_name == "guide":
            answer = state.update(body)
        else:
            answer = state.save_details(body, create=endpoint.endswith("/create/"))
        assert answer["Status"] in ("Success", 0), answer
        answer_id = profile.parse_push(answer, endpoint).sumit_id
    stored = state.customers[answer_id]
    return answer_id, (stored if profile_name == "guide" else state.entity(stored))


# -- (a) mapping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("profile_name", PROFILES)
@PROPERTY
@given(first=local_fields(), second=local_fields())
def test_every_mapped_field_survives_a_push_and_the_next_pull(profile_name, first, second):
    """Create with ``first``, update with ``second``: the listing decodes to ``second`` exactly,
    under the id SUMIT answered (a local NULL country reads back as the documented IL)."""
    pushes = [LocalCustomer(id=7, sumit_id=None, fields=first, fingerprint="x"),
              LocalCustomer(id=7, sumit_id=None, fields=second, fingerprint="x")]
    sumit_id, listed = through_sandbox(profile_name, pushes)
    assert set(listed) <= (GUIDE_KEYS if profile_name == "guide" else REST_LISTING_KEYS)
    pulled = PROFILES[profile_name].decode_customer(listed)
    assert pulled.sumit_id == sumit_id
    assert pulled.fields == {**second, "country": second["country"] or DEFAULT_COUNTRY}
    assert pulled.custom == {}  # the typed fields and company/state/country never leak into metadata
    if profile_name == "guide":  # a lost create is found again by the local id it was made with
        assert pulled.external_id == 7


@PROPERTY
@given(sumit_id=st.one_of(st.from_regex(r"[0-9]{1,25}", fullmatch=True), clean_value.filter(lambda s: len(s) <= 100)))
def test_a_rest_update_names_the_customer_by_the_very_id_it_has(sumit_id):
    """The rest profile sends SUMIT's numeric ids as numbers; no id may change on the way ("00123" is not 123)."""
    endpoint, body = PROFILES["rest"].push_request(LocalCustomer(1, sumit_id, {"name": "A"}, "x"))
    assert endpoint == "/accounting/customers/update/"
    assert clean_id(body["Details"]["ID"]) == sumit_id


@pytest.mark.parametrize("profile_name, records", [("guide", hostile_guide_record()), ("rest", hostile_rest_entity())])
@PROPERTY
@given(data=st.data())
def test_hostile_records_decode_to_storable_values_or_are_rejected_with_a_reason(profile_name, records, data):
    """Whatever a server sends, decoding either rejects the record (InvalidRecord, with a reason)
    or yields text PostgreSQL can hold; the pulled form is a fixed point of push-then-pull."""
    profile = PROFILES[profile_name]
    raw = data.draw(records)
    try:
        customer = profile.decode_customer(raw)
    except InvalidRecord as error:
        event("rejected")
        assert str(error)
        short = excerpt(raw)  # what crm_sync_errors keeps of it
        assert storable(json.dumps(short, ensure_ascii=False))
        assert all(len(k) <= 100 and len(v) <= 200 for k, v in short.items())
        wire_id = raw.get("CustomerID", raw.get("ID"))
        rejected = RejectedRecord(str(error), None if wire_id is None else str(wire_id), short)
        assert rejected.sumit_id is None or (storable(rejected.sumit_id) and len(rejected.sumit_id) <= MAX_ID_LENGTH)
        return
    event("decoded")
    wire_id = raw.get("CustomerID", raw.get("ID"))
    wire_id = wire_id[0] if profile_name == "rest" and isinstance(wire_id, list) and wire_id else wire_id
    # A CustomerID is text or a whole number; a number keeps its digits.
    assert isinstance(wire_id, str) or (type(wire_id) in (int, float) and wire_id == int(wire_id))
    if not isinstance(wire_id, str):
        assert customer.sumit_id == str(int(wire_id))
    assert storable(customer.sumit_id) and customer.sumit_id == customer.sumit_id.strip()
    assert 0 < len(customer.sumit_id) <= MAX_ID_LENGTH
    for value in customer.fields.values():
        assert value is None or (value and storable(value) and value == value.strip())
    assert customer.fields["name"] and customer.fields["country"]
    assert storable(json.dumps(customer.custom, ensure_ascii=False))
    assert not {"last_synced_at", "crm_missing_since"} & set(customer.custom)  # crmsync's own metadata keys
    sumit_id, listed = through_sandbox(profile_name, [
        LocalCustomer(id=1, sumit_id=None, fields=customer.fields, fingerprint="x")])
    assert profile.decode_customer(listed).fields == customer.fields


# A record as SUMIT's listing nearly always sends it (every guide field, a CustomerID, nothing else),
# with the values that make it not quite plain: padding, unicode spaces, control characters, NUL,
# half an emoji, numbers, containers, a missing name; and a record with one key more or less.
plain_text = st.one_of(*[any_text] * 4, st.sampled_from(HOSTILE_TEXT + ["\u3000x\u3000", "x\x1f", "\x85", "a|b"]))
plain_value = st.one_of(*[plain_text] * 8, st.one_of(st.none(), st.integers(), st.floats(), st.booleans()), containers)


GUIDE_FIELDS = ["Name", "Email", "Phone", "CompanyName", "TaxID", "Address", "City", "State", "Country", "ZipCode"]


@st.composite
def plain_guide_record(draw):
    printable = st.one_of(st.sampled_from(SAMPLES), st.from_regex(r"0[0-9]{8}", fullmatch=True),
                          st.text(st.characters(whitelist_categories=("L", "N", "P", "S")), max_size=20))
    text = st.one_of(*[printable] * 20, st.just(""), st.none(), printable.map(lambda v: f" {v} "), any_text,
                     st.just("\u3000x"), st.just("\t"))
    record = {key: draw(text) for key in GUIDE_FIELDS}
    record["Name"] = draw(st.one_of(*[st.sampled_from(SAMPLES)] * 8, text))
    record["CustomerID"] = draw(st.one_of(*[st.integers(min_value=1, max_value=10**20)] * 12, hostile_id,
                                          st.integers(min_value=10**99, max_value=10**101)))
    shape = draw(st.sampled_from(["plain"] * 3 + ["odd value", "missing", "custom", "external", "changed"]))
    if shape == "odd value":
        record[draw(st.sampled_from(sorted(record)))] = draw(plain_value)
    elif shape == "missing":
        del record[draw(st.sampled_from(sorted(record)))]
    elif shape != "plain":
        key = {"custom": draw(any_text), "external": "ExternalIdentifier", "changed": "UpdatedAt"}[shape]
        record[key] = draw(st.one_of(custom_value, *[st.sampled_from(["2026-11-20T10:00:00Z", "12", 12])] * 3))
    return record


PLAIN = {"Name": "מאפיית אלפא", "Email": "a@example.co.il", "Phone": "050-1234567", "CompanyName": "", "TaxID": "007",
         "Address": "רח׳ הרצל 1", "City": "Tel Aviv", "State": "", "Country": "IL", "ZipCode": "6100001",
         "CustomerID": 100001}
SHORT_WAY_CASES = {
    "plain": {}, "padded": {"City": "  Haifa ", "Name": " A "}, "null": {"Email": None}, "no country": {"Country": ""},
    "missing field": {"Phone": ...}, "custom field": {"Segment": "VIP"}, "one for the other": {"Phone": ..., "Segment": "V"}, "reserved custom": {"last_synced_at": "x"},
    "external id": {"ExternalIdentifier": "17"}, "changed at": {"UpdatedAt": "2026-11-20T10:00:00Z"},
    "no name": {"Name": "  "}, "number": {"ZipCode": 6100001.0}, "container": {"City": ["Haifa"]},
    "text id": {"CustomerID": " 100001 "}, "blank id": {"CustomerID": " "}, "long text id": {"CustomerID": "1" * 101},
    "id with NUL": {"CustomerID": "1\x00"}, "long id": {"CustomerID": 10**101}, "bool id": {"CustomerID": True},
    "control character": {"City": "Hai\x1ffa"}, "NUL": {"Name": "A\x00"}, "half an emoji": {"Name": "A\ud83d"},
}


@pytest.mark.parametrize("case", SHORT_WAY_CASES)
def test_the_pull_rows_short_way_agrees_on_each_kind_of_record(case):
    raw = {k: v for k, v in {**PLAIN, **SHORT_WAY_CASES[case]}.items() if v is not ...}
    profile = PROFILES["guide"]
    try:
        expected = customer_row(profile.decode_customer(raw))
    except InvalidRecord as error:
        with pytest.raises(InvalidRecord, match=re.escape(str(error))):
            profile.decode_row(raw)
        return
    assert profile.decode_row(raw) == expected


@PROPERTY
@given(raw=plain_guide_record())
def test_the_pull_rows_short_way_agrees_with_decoding_the_customer(raw):
    """GuideProfile.decode_row maps most records straight to a pull row (crmsync.core.pulled): for any
    record it gives the row of decode_customer's customer, or the same rejection."""
    profile = PROFILES["guide"]
    try:
        expected = customer_row(profile.decode_customer(raw))
    except InvalidRecord as error:
        event("rejected")
        with pytest.raises(InvalidRecord) as raised:
            profile.decode_row(raw)
        assert str(raised.value) == str(error)
        return
    event("decoded" + (" (the short way)" if type(raw.get("CustomerID")) is int and all(
        v is None or (type(v) is str and v.isprintable()) for k, v in raw.items() if k in GUIDE_FIELDS) else ""))
    assert profile.decode_row(raw) == expected
    assert row_customer(profile.decode_row(raw)) == profile.decode_customer(raw)


@PROPERTY
@given(a=st.lists(st.one_of(st.none(), any_text), min_size=1, max_size=4),
       b=st.lists(st.one_of(st.none(), any_text), min_size=1, max_size=4))
def test_fingerprints_differ_exactly_when_values_differ(a, b):
    assert (fingerprint_values(a) == fingerprint_values(b)) == (a == b)


# -- (b), (c) merging -----------------------------------------------------------------------------

POOL = [None, "", "Alpha", 'אלפא בע"מ', "0123", "😀"]
policies = st.sampled_from(list(ConflictPolicy))
moments = st.one_of(st.none(), st.integers(-48, 48).map(lambda h: NOW + timedelta(hours=h)))
customs = st.sampled_from([{}, {"Segment": "VIP"}, {"Segment": "Regular", "מקור": "אתר"}])


@st.composite
def versions(draw, local_edited=None):
    """(agreed, local, crm): the last common state and each side now, often equal, often one
    field apart, sometimes the same edit on both sides, so every branch of the merge is met."""
    agreed = draw(local_fields())

    def edited(fields):  # an edit changes a value: drawing the value already there is no edit
        column = draw(st.sampled_from(SYNCED_COLUMNS))
        choices = [v for v in (POOL if column != "name" else POOL[2:]) if v != fields[column]]
        return {**fields, column: draw(st.sampled_from(choices))}

    if local_edited is None:
        local_edited = draw(st.booleans())
    local = edited(agreed) if local_edited else agreed
    crm = draw(st.sampled_from(["same", "edited", "as_local"]))
    crm = {"same": agreed, "as_local": local}.get(crm) or edited(agreed)
    return agreed, local, crm


@st.composite
def situations(draw, local_edited=None):
    """A pulled customer and the local state it meets (None: not linked yet)."""
    agreed, local, crm = draw(versions(local_edited))
    customer = CrmCustomer("100", crm, draw(customs), changed_at=draw(moments))
    if local_edited is None and draw(st.integers(0, 9)) == 0:
        return customer, None
    last_seen = draw(st.sampled_from([agreed, crm, local]))
    state = SyncState(
        id=1, fields=local,
        synced_fingerprint=draw(st.sampled_from([fields_fingerprint(agreed), None])),
        crm_fingerprint=draw(st.sampled_from([fields_fingerprint(last_seen), None])),
        crm_custom_fingerprint=draw(st.sampled_from(
            [custom_fingerprint(customer.custom), custom_fingerprint({}), None])),
        updated_at=NOW + timedelta(hours=draw(st.integers(-48, 48))),
    )
    return customer, state


def applied(decision: PullDecision, state: SyncState | None) -> SyncState:
    """The row after the store writes ``decision``: what include/sql/pull_page.sql and
    update_pulled.sql do with its flags (the database's own behaviour is tested through Airflow)."""
    if decision.local_id is None:
        fp = decision.fingerprint
        return SyncState(1, dict(decision.customer.fields), fp, fp, decision.custom_fingerprint, NOW)
    if not decision.write:
        return state
    fields = dict(decision.customer.fields) if decision.replace_fields else state.fields
    return SyncState(
        id=state.id, fields=fields,
        synced_fingerprint=decision.fingerprint if decision.mark_agreed else state.synced_fingerprint,
        crm_fingerprint=decision.fingerprint, crm_custom_fingerprint=decision.custom_fingerprint,
        updated_at=NOW if fields != state.fields else state.updated_at,
    )


@PROPERTY
@given(situation=situations(), policy=policies, full_resync=st.booleans())
def test_planning_again_after_the_write_plans_no_write(situation, policy, full_resync):
    customer, state = situation
    first = plan_pull(customer, state, policy=policy, pulled_at=NOW, full_resync=full_resync)
    again = plan_pull(customer, applied(first, state), policy=policy, pulled_at=NOW, full_resync=full_resync)
    assert not again.write and again.outcome is Outcome.UNCHANGED and again.conflict is None


@PROPERTY
@given(situation=situations(local_edited=True), policy=policies, full_resync=st.booleans())
def test_a_local_edit_is_overwritten_only_by_a_conflict_the_crm_won(situation, policy, full_resync):
    customer, state = situation
    decision = plan_pull(customer, state, policy=policy, pulled_at=NOW, full_resync=full_resync)
    if decision.replace_fields and decision.customer.fields != state.fields:
        assert decision.conflict is not None and decision.conflict.winner == "crm"


@PROPERTY
@given(fields=local_fields(), custom=customs, policy=policies, full_resync=st.booleans(),
       updated_hours=st.integers(-48, 48), changed_at=moments)
def test_a_run_where_nothing_changed_plans_no_write(fields, custom, policy, full_resync, updated_hours, changed_at):
    fp = fields_fingerprint(fields)
    state = SyncState(1, dict(fields), fp, fp, custom_fingerprint(custom), NOW + timedelta(hours=updated_hours))
    decision = plan_pull(CrmCustomer("100", dict(fields), dict(custom), changed_at), state, policy=policy,
                         pulled_at=NOW, full_resync=full_resync)
    assert not decision.write and decision.outcome is Outcome.UNCHANGED and decision.conflict is None


@PROPERTY
@given(versions=versions(), custom=customs, policy=policies)
def test_an_unchanged_crm_copy_plans_no_write_whatever_was_edited_locally(versions, custom, policy):
    """The CRM copy is the one last seen (both fingerprints match it): only the push may act."""
    agreed, local, crm = versions
    state = SyncState(1, local, fields_fingerprint(agreed), fields_fingerprint(crm), custom_fingerprint(custom), NOW)
    decision = plan_pull(CrmCustomer("100", crm, dict(custom)), state, policy=policy, pulled_at=NOW)
    assert not decision.write and not decision.replace_fields and decision.conflict is None
