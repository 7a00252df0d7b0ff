"""The mass-change guard's decision and the approval text (pure)."""

from __future__ import annotations

import re

from crmsync.core.guard import FieldChange, GuardLimits, PullPlan, describe_pull_plan, describe_push, pull_reasons, push_reasons

LIMITS = GuardLimits(max_change_ratio=0.2, min_mass_change=100, max_push_without_approval=1000)


def test_an_ordinary_night_needs_no_approval():
    plan = PullPlan(existing=10_000, created=500, changed=300, vanished=12,
                    fields=[FieldChange("email", 250, 3), FieldChange("phone", 80, 0)])
    assert pull_reasons(plan, LIMITS) == []


def test_new_customers_are_never_a_mass_change():
    assert pull_reasons(PullPlan(existing=0, created=100_000), LIMITS) == []
    assert pull_reasons(PullPlan(existing=200, created=50_000), LIMITS) == []


def test_an_empty_listing_over_a_thousand_customers_waits():
    [reason] = pull_reasons(PullPlan(existing=1000, vanished=1000), LIMITS)
    assert "flag 1,000 of the 1,000 existing customers" in reason and "100%" in reason


def test_a_blanked_column_waits_even_when_few_other_fields_change():
    plan = PullPlan(existing=1000, changed=300, fields=[FieldChange("email", 300, 290), FieldChange("city", 5, 0)])
    reasons = pull_reasons(plan, LIMITS)
    assert any("change 300 of the 1,000" in r for r in reasons)
    assert any("blank email on 290 customers" in r for r in reasons)
    assert not any("city" in r for r in reasons)


def test_the_share_must_be_exceeded_and_the_minimum_reached():
    assert pull_reasons(PullPlan(existing=1000, changed=200), LIMITS) == []  # exactly 20%: not more
    assert pull_reasons(PullPlan(existing=1000, changed=201), LIMITS) != []
    # 99 of 120 is 82%, but fewer than min_mass_change: a small table's afternoon of edits
    assert pull_reasons(PullPlan(existing=120, changed=99), LIMITS) == []
    assert pull_reasons(PullPlan(existing=120, changed=100), LIMITS) != []
    assert pull_reasons(PullPlan(existing=90, changed=90, vanished=90), LIMITS) == []  # a table below the minimum


def test_a_big_push_waits():
    assert push_reasons(1000, LIMITS) == []
    [reason] = push_reasons(1001, LIMITS)
    assert "push 1,001 customers" in reason


def test_the_plan_round_trips_through_json_and_compares_on_counts_only():
    plan = PullPlan(existing=1000, changed=300, fields=[FieldChange("email", 300, 290, [{"customer_id": 1}])])
    again = PullPlan.from_dict(plan.to_dict())
    assert again == plan
    other = PullPlan.from_dict({**plan.to_dict(), "fields": [{"field": "email", "changed": 300, "blanked": 290}]})
    assert other.totals() == plan.totals()
    assert PullPlan(existing=1000, changed=301).totals() != PullPlan(existing=1000, changed=300).totals()


def test_the_approval_text_shows_counts_and_examples_as_text():
    hostile = "<img src=x onerror=alert(1)> [link](http://evil) **bold**"
    plan = PullPlan(existing=1000, changed=300, fields=[FieldChange("name", 300, 0, [
        {"customer_id": 7, "sumit_customer_id": "C7", "before": "Dana", "after": hostile}])])
    text = describe_pull_plan(plan, pull_reasons(plan, LIMITS))
    assert "| name | 300 | 0 |" in text
    assert "customer 7" in text and "Dana" in text
    # Markdown shows an escaped character as itself: every markup character from the CRM is escaped
    assert re.search(r"(?<!\\)[<>\[\]()*]", text.split("Dana → ")[1].split("\n")[0]) is None
    assert "\\<img src=x onerror=alert\\(1\\)\\>" in text
    push = describe_push(1500, [{"id": 1, "name": "<b>x</b>"}], push_reasons(1500, LIMITS))
    assert "push 1,500 customers" in push and "\\<b\\>x\\</b\\>" in push
