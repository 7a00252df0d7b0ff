from datetime import datetime, timedelta, timezone

import pytest

from crmsync.core.fingerprint import custom_fingerprint, fields_fingerprint
from crmsync.core.merge import ConflictPolicy, Outcome, SyncState, dedupe_by_id, plan_pull
from crmsync.core.model import SYNCED_COLUMNS, CrmCustomer

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


def fields(**values):
    base = {column: None for column in SYNCED_COLUMNS}
    base.update(name="Alpha", email="a@x.il", country="IL")
    base.update(values)
    return base


def crm(custom=None, changed_at=None, **values):
    return CrmCustomer(sumit_id="100", fields=fields(**values), custom=custom or {}, changed_at=changed_at)


def synced_state(agreed, local=None, custom=None, updated_at=NOW - timedelta(days=1)):
    """A row whose last agreed state is ``agreed`` and whose current fields are ``local``."""
    return SyncState(
        id=1, fields=local or agreed, synced_fingerprint=fields_fingerprint(agreed),
        crm_fingerprint=fields_fingerprint(agreed), crm_custom_fingerprint=custom_fingerprint(custom or {}),
        updated_at=updated_at,
    )


def plan(customer, state, policy=ConflictPolicy.NEWER_WINS, **kw):
    return plan_pull(customer, state, policy=policy, pulled_at=NOW, **kw)


def test_new_crm_customer_is_created():
    decision = plan(crm(), None)
    assert decision.outcome is Outcome.CREATED and decision.local_id is None and decision.write


def test_nothing_changed_means_nothing_written():
    decision = plan(crm(), synced_state(fields()))
    assert decision.outcome is Outcome.UNCHANGED and not decision.write


def test_crm_change_with_no_local_change_updates_the_row():
    decision = plan(crm(email="new@x.il"), synced_state(fields()))
    assert decision.outcome is Outcome.UPDATED and decision.replace_fields and decision.mark_agreed
    assert decision.conflict is None


def test_local_edit_survives_an_unchanged_crm_copy():
    decision = plan(crm(), synced_state(fields(), local=fields(phone="050-0000000")))
    assert decision.outcome is Outcome.UNCHANGED and not decision.write and not decision.replace_fields


@pytest.mark.parametrize(
    "policy, updated_at, changed_at, winner",
    [
        (ConflictPolicy.CRM_WINS, NOW, None, "crm"),
        (ConflictPolicy.LOCAL_WINS, NOW - timedelta(days=9), None, "local"),
        (ConflictPolicy.NEWER_WINS, NOW - timedelta(hours=1), None, "crm"),  # the CRM copy is seen now
        (ConflictPolicy.NEWER_WINS, NOW - timedelta(hours=1), NOW - timedelta(hours=2), "local"),
        (ConflictPolicy.NEWER_WINS, NOW - timedelta(hours=2), NOW - timedelta(hours=1), "crm"),
    ],
)
def test_both_sides_changed_is_a_conflict_decided_by_policy(policy, updated_at, changed_at, winner):
    state = synced_state(fields(), local=fields(email="local@x.il"), updated_at=updated_at)
    decision = plan(crm(email="crm@x.il", changed_at=changed_at), state, policy=policy)
    assert decision.conflict is not None and decision.conflict.winner == winner
    assert decision.replace_fields is (winner == "crm")
    assert decision.write  # the CRM version is remembered either way
    assert decision.conflict.local_fields["email"] == "local@x.il"
    assert decision.conflict.crm_fields["email"] == "crm@x.il"


def test_same_edit_on_both_sides_is_an_agreement_not_a_conflict():
    state = synced_state(fields(), local=fields(email="same@x.il"))
    decision = plan(crm(email="same@x.il"), state)
    assert decision.conflict is None and decision.mark_agreed and not decision.replace_fields and decision.write


def test_custom_field_change_merges_metadata_without_touching_local_edits():
    state = synced_state(fields(), local=fields(phone="local"), custom={"Segment": "A"})
    decision = plan(crm(custom={"Segment": "B"}), state)
    assert decision.outcome is Outcome.UPDATED and decision.merge_custom and not decision.replace_fields
    assert decision.conflict is None


def test_merging_is_idempotent_after_the_write_is_applied():
    customer = crm(email="new@x.il", custom={"Segment": "B"})
    first = plan(customer, synced_state(fields()))
    assert first.write
    after = SyncState(id=1, fields=customer.fields, synced_fingerprint=first.fingerprint,
                      crm_fingerprint=first.fingerprint, crm_custom_fingerprint=first.custom_fingerprint,
                      updated_at=NOW)
    again = plan(customer, after)
    assert not again.write and again.outcome is Outcome.UNCHANGED


def test_full_resync_takes_the_crm_copy_when_fingerprints_lie_but_keeps_local_edits():
    agreed = fields()
    drifted = SyncState(id=1, fields=fields(city="stale"), synced_fingerprint=fields_fingerprint(fields(city="stale")),
                        crm_fingerprint=fields_fingerprint(agreed), crm_custom_fingerprint=custom_fingerprint({}),
                        updated_at=NOW)
    assert not plan(crm(), drifted).write
    assert plan(crm(), drifted, full_resync=True).replace_fields
    edited = synced_state(agreed, local=fields(city="local edit"))
    assert not plan(crm(), edited, full_resync=True).replace_fields


def test_policy_parse_names_the_choices():
    assert ConflictPolicy.parse("crm_wins") is ConflictPolicy.CRM_WINS
    with pytest.raises(ValueError, match="newer_wins, crm_wins, local_wins"):
        ConflictPolicy.parse("latest")


def test_dedupe_keeps_the_last_copy():
    a1, b, a2 = crm(email="1"), CrmCustomer("200", fields()), crm(email="2")
    unique, dropped = dedupe_by_id([a1, b, a2])
    assert [c.fields["email"] for c in unique if c.sumit_id == "100"] == ["2"]
    assert dropped == [a1]
