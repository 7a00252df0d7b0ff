"""The pure side of resolving conflicts (crmsync.core.conflict_plan): what each side of a conflict
is under field rules and the API profile, and what a resolve does with each named conflict."""

from __future__ import annotations

import pytest

from crmsync.core import conflict_plan as cp
from crmsync.core import field_rules
from crmsync.core.model import SYNCED_COLUMNS
from crmsync.core.summary import SyncCounts, summary_line

BASE = {c: None for c in SYNCED_COLUMNS} | {"name": "Alpha", "country": "IL"}
LOCAL = BASE | {"email": "local@x.il", "city": "Local City"}
CRM = BASE | {"email": "crm@x.il", "phone": "050-9"}


def row(id=1, *, customer_id=10, winner="crm", current="winner", newest_open_id=None, resolution=None, local=LOCAL,
        crm=CRM, sumit_id="S1"):
    values = {"crm": crm, "local": local}
    if current == "winner":
        current = values[winner]
    current = None if current is None else {**current, "sumit_customer_id": sumit_id, "metadata": {}}
    return cp.ConflictRow(id=id, customer_id=customer_id, sumit_customer_id=sumit_id, winner=winner,
                          local_values=local, crm_values=crm, resolution=resolution, resolved_by="manual__r1",
                          newest_open_id=id if newest_open_id is None and resolution is None else newest_open_id,
                          current=current)


def rules_from(text: str) -> field_rules.FieldRules:
    return field_rules.parse(text, source="test")


def one(found, *, keep, ids=None, **options) -> cp.Decision:
    [decision] = cp.plan(ids or [r.id for r in found], found, keep=keep, **options)
    return decision


# -- the two sides ------------------------------------------------------------------------------


def test_without_rules_the_sides_are_the_recorded_versions():
    sides = cp.versions(row())
    assert sides == {"local": LOCAL, "crm": CRM}


def test_the_crms_side_keeps_the_local_value_of_a_field_the_rules_never_take_or_the_profile_never_carries():
    """A to_crm/none field, a column the rest profile does not carry, and an empty CRM value
    under keep_local_when_crm_empty hold placeholders in the CRM's version: never written."""
    rules = rules_from('{"fields": {"phone": "to_crm", "city": {"keep_local_when_crm_empty": true}}}')
    local = LOCAL | {"phone": "03-local", "company_name": "Local Co"}
    crm = CRM | {"phone": None, "company_name": None, "city": None}
    sides = cp.versions(row(local=local, crm=crm), rules=rules, not_carried={"company_name"})
    assert sides["crm"] == local | {"email": "crm@x.il"}  # only the email is the CRM's to give
    assert sides["local"] == local


def test_custom_fields_are_sides_only_when_recorded_and_excluded_ones_never_come_from_the_crm():
    rules = rules_from('{"exclude_metadata": ["secret*"]}')
    local = LOCAL | {"metadata": {"Segment": "VIP", "secret_token": "a"}}
    crm = CRM | {"metadata": {"Segment": "Gold", "Tier": "1", "secret_token": "b"}}
    sides = cp.versions(row(local=local, crm=crm), rules=rules)
    assert sides["local"]["metadata"] == {"Segment": "VIP", "Tier": None, "secret_token": "a"}
    assert sides["crm"]["metadata"] == {"Segment": "Gold", "Tier": "1", "secret_token": "a"}
    assert "metadata" not in cp.versions(row())["crm"]


def test_a_column_only_one_version_holds_is_neither_compared_nor_written():
    crm = {k: v for k, v in CRM.items() if k != "phone"}
    sides = cp.versions(row(crm=crm))
    assert "phone" not in sides["crm"] and "phone" not in sides["local"]


def test_difference_and_holds():
    assert cp.difference(LOCAL, CRM) == {"email": "local@x.il", "phone": None, "city": "Local City"}
    assert cp.difference({"metadata": {"a": 1, "b": None}}, {"metadata": {"a": 1}}) == {}
    assert cp.difference({"metadata": {"a": 2}}, {"metadata": {"a": 1}}) == {"metadata": {"a": 2}}
    current = {**CRM, "metadata": {"Tier": "1"}}
    assert cp.holds(current, {"email": "crm@x.il", "metadata": {"Tier": "1", "Gone": None}})
    assert not cp.holds(current, {"metadata": {"Tier": None}})
    assert not cp.holds(current, {"email": "local@x.il"})


# -- what a resolve does -------------------------------------------------------------------------


def test_keeping_the_winner_writes_nothing_even_when_the_row_changed_or_is_gone():
    assert one([row()], keep="crm").outcome == cp.KEPT
    assert one([row(current=LOCAL | {"city": "Edited"})], keep="crm").outcome == cp.KEPT
    assert one([row(winner="local", current=None)], keep="local").outcome == cp.KEPT
    assert one([row()], keep="crm").resolves


@pytest.mark.parametrize("winner, keep", [("crm", "local"), ("local", "crm")])
def test_keeping_the_loser_rewrites_the_differing_fields_of_a_row_that_still_holds_the_winner(winner, keep):
    decision = one([row(winner=winner)], keep=keep)
    sides = {"crm": CRM, "local": LOCAL}
    assert decision.outcome == cp.REWRITE and not decision.resolves
    assert decision.expected == sides[winner]  # every column: the row as the conflict left it
    assert decision.chosen == cp.difference(sides[keep], sides[winner])
    assert "sumit_customer_id" not in decision.chosen
    assert (decision.customer_id, decision.sumit_customer_id) == (10, "S1")


def test_a_row_changed_since_relinked_or_deleted_is_left_alone_and_one_holding_the_choice_already_is_resolved():
    assert one([row(current=CRM | {"city": "Edited"})], keep="local").outcome == cp.CHANGED_SINCE
    assert one([row(current=CRM | {"city": "Local City"})], keep="local").outcome == cp.CHANGED_SINCE  # half of it
    relinked = row()
    relinked = cp.ConflictRow(**{**relinked.__dict__, "current": {**relinked.current, "sumit_customer_id": "S2"}})
    assert one([relinked], keep="local").outcome == cp.CHANGED_SINCE
    assert one([row(current=None)], keep="local").outcome == cp.DELETED
    assert one([row(current=LOCAL | {"name": "Renamed"})], keep="local").outcome == cp.HOLDS_CHOICE
    assert one([row(local=CRM)], keep="local").outcome == cp.SAME  # both sides hold the same values


def test_rules_that_leave_the_crm_nothing_to_give_resolve_without_writing():
    rules = rules_from('{"fields": {"email": "none", "phone": "none", "city": "none"}}')
    assert one([row(winner="local")], keep="crm", rules=rules).outcome == cp.SAME


def test_unknown_resolved_and_superseded_conflicts_are_named_and_refused_when_nothing_else_is_asked():
    decisions = cp.plan([7, 1, 2], [row(1, resolution="local"), row(2, newest_open_id=5)], keep="local")
    assert [(d.conflict_id, d.outcome) for d in decisions] == [
        (1, cp.ALREADY_RESOLVED), (2, cp.SUPERSEDED), (7, cp.UNKNOWN)]
    assert decisions[1].lead == 5
    assert cp.refusal(decisions) == ("no conflict has id 7; already resolved: 1 (local, by manual__r1); superseded "
                                     "by a newer open conflict of the same customer, which decides: 2 (resolve 5)")
    with_open = cp.plan([7, 3], [row(3)], keep="local")
    assert cp.refusal(with_open) is None
    changed_only = cp.plan([3], [row(3, current=CRM | {"city": "x"})], keep="local")
    assert cp.refusal(changed_only) is None  # left alone and named, not refused


def test_the_newest_named_conflict_of_a_customer_decides_for_the_older_ones_named_with_it():
    older, newer = row(1, newest_open_id=4), row(4)
    decisions = cp.plan([1, 4], [older, newer], keep="local")
    assert [(d.conflict_id, d.outcome, d.lead) for d in decisions] == [(1, cp.SETTLED_WITH, 4), (4, cp.REWRITE, None)]
    assert cp.refusal(decisions) is None
    other_customer = row(2, customer_id=11)
    assert [d.outcome for d in cp.plan([1, 2], [older, other_customer], keep="local")] == [cp.SUPERSEDED, cp.REWRITE]


def test_after_the_rewrite_a_row_it_did_not_write_is_changed_since_and_only_resolving_leads_are_marked():
    decisions = cp.plan([1, 2, 3], [row(1), row(2, customer_id=11), row(3, customer_id=12, current=None)],
                        keep="local")
    done = cp.after_rewrite(decisions, {10})
    assert [d.outcome for d in done] == [cp.REWRITTEN, cp.CHANGED_SINCE, cp.DELETED]
    assert [d.conflict_id for d in cp.leads_to_resolve(done)] == [1]


def test_keep_must_be_a_side():
    with pytest.raises(ValueError, match="keep must be one of crm, local"):
        cp.plan([1], [row()], keep="both")


def test_the_summary_line():
    counts = SyncCounts(conflicts=3, updated=2, pushed=2, changed=4)
    assert summary_line("resolve", counts, status="success") == \
        "Resolve completed. Resolved: 3, Rewritten: 2, Pushed: 2 (Failed: 0), Changed: 4"
    assert summary_line("resolve", SyncCounts(), status="failed", dry_run=True) == \
        "[dry run, nothing written] Resolve failed. Resolved: 0, Rewritten: 0, Pushed: 0 (Failed: 0), Changed: 0"
