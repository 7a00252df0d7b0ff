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

Field rules (crmsync.core.field_rules) narrow what "the CRM copy" is: the pull compares the copy
the rules let in (a field not taken from the CRM holds a constant there, so a CRM edit of it
is no change), and taking the CRM copy keeps the local value of every field the rules do not
take. Then the row holds something the CRM copy does not, so a decision carries two
fingerprints: ``fingerprint``, of the CRM copy as seen (``crm_fingerprint``), and
``agreed_fingerprint``, of the values the local row is left with (``synced_fingerprint``),
which the next push compares with. The agreement is recorded only when the local row holds
no edit the CRM is not known to have: otherwise the push still sends it. Without rules, and
with every field carried by the API profile, both fingerprints are the CRM copy's and the
table above is all there is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from operator import attrgetter
from typing import TYPE_CHECKING, TypeVar

from crmsync.core.fingerprint import customer_fingerprints, fields_fingerprint
from crmsync.core.model import SYNCED_COLUMNS, CrmCustomer, Fields

if TYPE_CHECKING:
    from crmsync.core.field_rules import FieldRules


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
    agreed: str | None = None  # see agreed_fingerprint; None: the CRM copy's

    @property
    def fingerprint(self) -> str:
        """The CRM copy's fingerprint, as this pull saw it (the row's ``crm_fingerprint``)."""
        return customer_fingerprints(self.customer)[0]

    @property
    def agreed_fingerprint(self) -> str:
        """The fingerprint of the fields the local row holds once written, recorded as agreed
        (``synced_fingerprint``) when ``mark_agreed``. The CRM copy's, unless field rules or the
        API profile keep local values the CRM copy does not have."""
        return self.agreed or self.fingerprint

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
    rules: "FieldRules | None" = None,
) -> PullDecision:
    """Decide what a pull does with one CRM customer, given the local state (if any).

    ``full_resync`` stops trusting the stored CRM fingerprint: a row with no local edit that
    differs from the CRM copy takes the CRM copy. Local edits are still detected and kept.
    ``rules`` (field rules) and the columns the API profile does not carry
    (``customer.not_carried``) narrow what is taken: see the module's docstring.
    """
    if state is None:
        return PullDecision(customer, None, Outcome.CREATED, replace_fields=True, merge_custom=True,
                            mark_agreed=True, write=True)
    if (rules is not None and not rules.is_default) or customer.not_carried:
        return _plan_with_rules(customer, state, policy=policy, pulled_at=pulled_at, full_resync=full_resync,
                                rules=rules if rules is not None else _no_rules())

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


def _plan_with_rules(
    customer: CrmCustomer, state: SyncState, *, policy: ConflictPolicy, pulled_at: datetime, full_resync: bool,
    rules: "FieldRules",
) -> PullDecision:
    """plan_pull's table, where taking the CRM copy keeps some local values (see the module's
    docstring). ``customer`` is the copy the rules let in (FieldRules.pulled)."""
    local = state.fields
    local_fp = state.local_fingerprint or fields_fingerprint(local)
    remote_fp, remote_custom_fp = customer_fingerprints(customer)
    result = rules.merged(local, customer)  # the local row once the CRM copy is taken
    takes_nothing = all(result[column] == local.get(column) for column in SYNCED_COLUMNS)
    local_changed = local_fp != state.synced_fingerprint
    crm_changed = remote_fp != state.crm_fingerprint
    # The same CRM copy, last recorded as it came (before these rules hid a field of it, or by
    # a push): no change. Only its fingerprint is brought up to date, so a rule that starts to
    # hide a field never turns a pending local edit into a conflict.
    seen_before = (crm_changed and customer.original_fingerprint is not None
                   and customer.original_fingerprint == state.crm_fingerprint)
    if seen_before:
        crm_changed = False
    if full_resync and not local_changed and not takes_nothing:
        crm_changed = True  # the stored CRM fingerprint is not trusted: compare on content
    custom_changed = remote_custom_fp != state.crm_custom_fingerprint
    common = dict(expected_fingerprint=local_fp)

    if not crm_changed and not custom_changed:
        return PullDecision(customer, state.id, Outcome.UNCHANGED, write=seen_before, **common)

    # The row's values may be recorded as agreed when it has no local edit the push still owes
    # the CRM: none at all, or only values the CRM copy is seen to hold already.
    confirmed = not local_changed or rules.crm_holds(result, customer)
    written = _carrying(customer, result)
    if takes_nothing:
        stale = state.crm_fingerprint != remote_fp or (confirmed and state.synced_fingerprint != local_fp)
        return PullDecision(written, state.id, Outcome.UPDATED if custom_changed else Outcome.UNCHANGED,
                            merge_custom=custom_changed, mark_agreed=confirmed, write=custom_changed or stale,
                            agreed=local_fp, **common)

    if not crm_changed:
        # Only the CRM's custom fields moved; they never conflict with local edits.
        return PullDecision(written, state.id, Outcome.UPDATED, merge_custom=True, write=True, **common)

    agreed = fields_fingerprint(result)
    if not local_changed:
        return PullDecision(written, state.id, Outcome.UPDATED, replace_fields=True, merge_custom=custom_changed,
                            mark_agreed=True, write=True, agreed=agreed, **common)

    winner = _winner(policy, state, customer, pulled_at)
    conflict = Conflict(winner=winner, local_fields=dict(local), crm_fields=dict(customer.fields))
    if winner == "crm":
        return PullDecision(written, state.id, Outcome.UPDATED, replace_fields=True, merge_custom=custom_changed,
                            mark_agreed=confirmed, write=True, conflict=conflict, agreed=agreed, **common)
    return PullDecision(written, state.id, Outcome.UPDATED if custom_changed else Outcome.UNCHANGED,
                        merge_custom=custom_changed, write=True, conflict=conflict, **common)


def _carrying(customer: CrmCustomer, values: Fields) -> CrmCustomer:
    """``customer`` with ``values`` as the fields to write, keeping its own fingerprints (the
    CRM copy's, which the row records as ``crm_fingerprint``)."""
    if values == customer.fields:
        return customer
    carrier = CrmCustomer(sumit_id=customer.sumit_id, fields=values, custom=customer.custom,
                          changed_at=customer.changed_at, external_id=customer.external_id,
                          not_carried=customer.not_carried)
    carrier.fingerprints = customer_fingerprints(customer)
    return carrier


def _no_rules() -> "FieldRules":
    from crmsync.core.field_rules import FieldRules

    return FieldRules()


def _winner(policy: ConflictPolicy, state: SyncState, customer: CrmCustomer, pulled_at: datetime) -> str:
    if policy is ConflictPolicy.CRM_WINS:
        return "crm"
    if policy is ConflictPolicy.LOCAL_WINS:
        return "local"
    crm_changed_at = customer.changed_at or pulled_at
    return "local" if state.updated_at > crm_changed_at else "crm"


T = TypeVar("T")


def dedupe_by_id(items: list[T], key: Callable[[T], str] = attrgetter("sumit_id")) -> tuple[list[T], list[T]]:
    """Split a page into unique items (the last copy of each CRM id wins, in the place of the
    first) and the copies dropped. ``key`` reads the CRM id: customers by default, a pull's rows
    with ``itemgetter(0)``."""
    last: dict[str, T] = {}
    dropped: list[T] = []
    for item in items:
        crm_id = key(item)
        if crm_id in last:
            dropped.append(last[crm_id])
        last[crm_id] = item
    return list(last.values()), dropped
