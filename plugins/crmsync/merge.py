"""The three-way merge that decides, per customer, what a pull does (pure, no I/O).

Three versions meet: the CRM's copy now, the local row now, and the last state both sides
agreed on, which we keep only as fingerprints (``synced_fingerprint`` of the local fields,
``crm_fingerprint``/``crm_custom_fingerprint`` of the CRM copy as last seen). Comparing
each side to its fingerprint says who changed since the last sync:

==================  ===============  ==================================================
CRM changed?        local changed?   decision
==================  ===============  ==================================================
no                  either           nothing to write (a local edit waits for the push)
yes, same values    either           agree: record the new common state
yes                 no               take the CRM copy
yes                 yes              conflict: the policy picks a side, it is recorded
custom fields only  either           merge the custom fields into metadata only
==================  ===============  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from crmsync.fingerprint import customer_fingerprints, fields_fingerprint
from crmsync.model import CrmCustomer, Fields


class ConflictPolicy(str, Enum):
    """Who wins when both sides changed the same customer since the last sync."""

    NEWER_WINS = "newer_wins"  # the later change wins; the CRM's time is when it says, else the pull
    CRM_WINS = "crm_wins"
    LOCAL_WINS = "local_wins"

    @classmethod
    def parse(cls, value: "str | ConflictPolicy") -> "ConflictPolicy":
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(p.value for p in cls)
            raise ValueError(f"unknown conflict_policy {value!r}; choose one of: {choices}") from None


@dataclass(frozen=True)
class SyncState:
    """What the database holds for a customer that is linked to a CRM id."""

    id: int
    fields: Fields
    synced_fingerprint: str | None
    crm_fingerprint: str | None
    crm_custom_fingerprint: str | None
    updated_at: datetime
    # The fingerprint of ``fields`` when the database computed it already (its SQL twin).
    local_fingerprint: str | None = None


class Outcome(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Conflict:
    winner: str  # "crm" or "local"
    local_fields: Fields
    crm_fields: Fields


@dataclass(slots=True)  # one per pulled customer: not frozen, which would cost 0.1 s per 100,000
class PullDecision:
    """What to write for one pulled customer. ``local_id`` None means insert."""

    customer: CrmCustomer
    local_id: int | None
    outcome: Outcome
    replace_fields: bool = False  # overwrite the local columns with the CRM copy
    merge_custom: bool = False  # merge the CRM custom fields into metadata
    mark_agreed: bool = False  # both sides now hold the same fields
    write: bool = False  # anything to write at all
    expected_fingerprint: str | None = None  # local fingerprint as read: guards against racing edits
    conflict: Conflict | None = None

    @property
    def fingerprint(self) -> str:
        return customer_fingerprints(self.customer)[0]

    @property
    def custom_fingerprint(self) -> str:
        return customer_fingerprints(self.customer)[1]


def plan_pull(
    customer: CrmCustomer,
    state: SyncState | None,
    *,
    policy: ConflictPolicy,
    pulled_at: datetime,
    full_resync: bool = False,
) -> PullDecision:
    """Decide what a pull does with one CRM customer, given the local state (if any).

    ``full_resync`` stops trusting the stored CRM fingerprint: a row with no local edit that
    differs from the CRM copy takes the CRM copy. Local edits are still detected and kept.
    """
    if state is None:
        return PullDecision(customer, None, Outcome.CREATED, replace_fields=True, merge_custom=True,
                            mark_agreed=True, write=True)

    local_fp = state.local_fingerprint or fields_fingerprint(state.fields)
    remote_fp, remote_custom_fp = customer_fingerprints(customer)
    local_changed = local_fp != state.synced_fingerprint
    same_values = local_fp == remote_fp
    crm_changed = remote_fp != state.crm_fingerprint
    if full_resync and not local_changed and not same_values:
        crm_changed = True  # the stored CRM fingerprint is not trusted: compare on content
    custom_changed = remote_custom_fp != state.crm_custom_fingerprint
    common = dict(expected_fingerprint=local_fp)

    if not crm_changed and not custom_changed:
        return PullDecision(customer, state.id, Outcome.UNCHANGED, **common)

    if same_values:
        # Both sides hold the same fields (perhaps both made the same edit): record the agreement.
        stale = state.synced_fingerprint != local_fp or state.crm_fingerprint != remote_fp
        return PullDecision(customer, state.id, Outcome.UPDATED if custom_changed else Outcome.UNCHANGED,
                            merge_custom=custom_changed, mark_agreed=True,
                            write=custom_changed or stale, **common)

    if not crm_changed:
        # Only the CRM's custom fields moved; they never conflict with local edits.
        return PullDecision(customer, state.id, Outcome.UPDATED, merge_custom=True, write=True, **common)

    if not local_changed:
        return PullDecision(customer, state.id, Outcome.UPDATED, replace_fields=True, merge_custom=custom_changed,
                            mark_agreed=True, write=True, **common)

    winner = _winner(policy, state, customer, pulled_at)
    conflict = Conflict(winner=winner, local_fields=dict(state.fields), crm_fields=dict(customer.fields))
    if winner == "crm":
        return PullDecision(customer, state.id, Outcome.UPDATED, replace_fields=True, merge_custom=custom_changed,
                            mark_agreed=True, write=True, conflict=conflict, **common)
    # Local wins: keep the local fields (the push sends them), but remember this CRM version
    # so the same conflict is not raised again on every pull.
    return PullDecision(customer, state.id, Outcome.UPDATED if custom_changed else Outcome.UNCHANGED,
                        merge_custom=custom_changed, write=True, conflict=conflict, **common)


def _winner(policy: ConflictPolicy, state: SyncState, customer: CrmCustomer, pulled_at: datetime) -> str:
    if policy is ConflictPolicy.CRM_WINS:
        return "crm"
    if policy is ConflictPolicy.LOCAL_WINS:
        return "local"
    crm_changed_at = customer.changed_at or pulled_at
    return "local" if state.updated_at > crm_changed_at else "crm"


def dedupe_by_id(customers: list[CrmCustomer]) -> tuple[list[CrmCustomer], list[CrmCustomer]]:
    """Split a page into unique customers (the last copy of each id wins) and the copies dropped."""
    last: dict[str, CrmCustomer] = {}
    dropped: list[CrmCustomer] = []
    for customer in customers:
        if customer.sumit_id in last:
            dropped.append(last[customer.sumit_id])
        last[customer.sumit_id] = customer
    return list(last.values()), dropped
