"""Matching's pure parts: the keys, their normal form, and what a link writes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from crmsync.core import field_rules
from crmsync.core.errors import ConfigurationError
from crmsync.core.fingerprint import customer_fingerprints, fields_fingerprint
from crmsync.core.matching import DEFAULT_KEYS, normalize, parse_keys, plan_link, resolve_keys
from crmsync.core.merge import ConflictPolicy
from crmsync.core.model import SYNCED_COLUMNS, CrmCustomer

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=timezone.utc)
RULES = field_rules.FieldRules()


def fields(**values):
    return {column: values.get(column) for column in SYNCED_COLUMNS}


@pytest.mark.parametrize("key, spellings", [
    ("tax_id", ["51-234567-8", "512345678", " 51 234 567 8 "]),
    ("email", ["Dana@Example.com", " dana@example.COM ", "dana@example.com"]),
    ("phone", ["050-1234567", "+972501234567", "0501234567", "+972-50-123-4567", "00972 50 123 4567"]),
])
def test_the_spellings_of_one_value_are_one(key, spellings):
    assert len({normalize(key, s) for s in spellings}) == 1


@pytest.mark.parametrize("key, value", [("tax_id", " - "), ("email", "   "), ("phone", "+"), ("email", None)])
def test_an_empty_value_is_none_and_never_matches(key, value):
    assert normalize(key, value) is None


def test_different_values_stay_different():
    assert normalize("email", "a@x.com") != normalize("email", "b@x.com")
    assert normalize("phone", "050-1234567") != normalize("phone", "052-1234567")


def test_keys_come_from_the_param_then_the_variable_then_the_extra_then_the_default():
    assert resolve_keys(["email"], "tax_id", None) == (("email",), "param match_keys")
    assert resolve_keys(None, "tax_id, phone", '["email"]') == (("tax_id", "phone"), "Variable crmsync_match_keys")
    assert resolve_keys(None, None, '["email"]') == (("email",), "sumit connection extra match_keys")
    assert resolve_keys(None, None, None) == (DEFAULT_KEYS, "default")
    assert resolve_keys([], "email", None) == ((), "param match_keys")  # [] turns matching off


@pytest.mark.parametrize("bad", [["name"], ["email", "email"], "[email", [1], {"email": 1}])
def test_bad_keys_are_refused_with_their_source(bad):
    with pytest.raises(ConfigurationError, match="param match_keys"):
        parse_keys(bad, source="param match_keys")


def crm(**values):
    return CrmCustomer(sumit_id="100", fields=fields(**values), custom={"Segment": "VIP"})


def test_a_link_fills_blanks_both_ways_and_owes_the_crm_what_it_lacks():
    d = plan_link(7, fields(name="Dana", email="dana@example.com", city="Haifa"), NOW, crm(name="Dana", phone="050-1"),
                  policy=ConflictPolicy.NEWER_WINS, pulled_at=NOW, rules=RULES)
    assert d.fields == fields(name="Dana", email="dana@example.com", city="Haifa", phone="050-1")
    assert (d.filled_local, d.filled_crm, d.conflict) == (["phone"], ["email", "city"], None)
    assert d.needs_push and d.synced_fingerprint == customer_fingerprints(d.customer)[0]


def test_a_link_the_crm_already_agrees_with_needs_no_push():
    d = plan_link(7, fields(name="Dana", email="dana@example.com"), NOW,
                  crm(name="Dana", email="DANA@example.com", phone="050-1"),
                  policy=ConflictPolicy.NEWER_WINS, pulled_at=NOW, rules=RULES)
    assert d.fields["email"] == "dana@example.com"  # a spelling apart is no change and no conflict
    assert d.conflict is None and not d.needs_push
    assert d.synced_fingerprint == fields_fingerprint(d.fields)


@pytest.mark.parametrize("policy, updated, winner, city", [
    (ConflictPolicy.CRM_WINS, NOW, "crm", "Haifa"),
    (ConflictPolicy.LOCAL_WINS, NOW, "local", "Tel Aviv"),
    (ConflictPolicy.NEWER_WINS, NOW + timedelta(hours=1), "local", "Tel Aviv"),
    (ConflictPolicy.NEWER_WINS, NOW - timedelta(hours=1), "crm", "Haifa"),
])
def test_a_field_filled_differently_is_a_conflict_the_policy_decides(policy, updated, winner, city):
    d = plan_link(7, fields(name="K", email="k@x.com", city="Tel Aviv"), updated,
                  crm(name="K", city="Haifa", zip_code="31000"), policy=policy, pulled_at=NOW, rules=RULES)
    assert d.conflict.winner == winner and d.fields["city"] == city
    assert d.fields["zip_code"] == "31000"  # blanks are filled whoever wins
    # both sides recorded with the blanks filled: they differ only where they conflict
    assert {c for c in SYNCED_COLUMNS if d.conflict.local_fields[c] != d.conflict.crm_fields[c]} == {"city"}
    assert d.needs_push  # the CRM lacks the e-mail either way


def test_field_rules_keep_what_they_do_not_take_and_owe_nothing_they_do_not_send():
    rules = field_rules.parse('{"fields": {"city": "to_crm", "phone": "from_crm"}}', source="test")
    customer = rules.pulled(crm(name="R", city="Haifa", email="r@x.com"))
    d = plan_link(7, fields(name="R", city="Tel Aviv", phone="03-1", email="r@x.com"), NOW, customer,
                  policy=ConflictPolicy.CRM_WINS, pulled_at=NOW, rules=rules)
    assert d.fields["city"] == "Tel Aviv" and d.conflict is None  # not taken from the CRM
    assert "phone" not in d.filled_crm  # never sent
