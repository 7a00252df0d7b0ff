"""What resolving recorded conflicts does to each one (pure, no I/O): crm_resolve_conflicts.

A pull that met a customer changed on both sides let its conflict policy pick a winner and
recorded both versions in crm_sync_conflicts (``local_values``, ``crm_values``). A person then
keeps one side. When it is the winner, the row already holds it: nothing is written. Otherwise
the row takes the chosen side's values where they differ from the winner's, but only while it
still holds the winner's values, as the conflict left it: a row changed since is left alone.

"The CRM's side" is what a pull would have written had the CRM won (field rules and the API
profile applied, :meth:`FieldRules.merged`): a field the rules never take from the CRM, or
one the profile does not carry, keeps its local value, so keeping the CRM's never blanks a
field the CRM's copy only held a placeholder for. The link to SUMIT (sumit_customer_id) is
never written. Custom fields are written only when a recorded version holds them (under
``"metadata"``; the pull records columns only: custom fields never conflict).

Only a customer's newest open conflict can be decided: it settles the customer's older open
conflicts too (they are superseded by it). An older one named alone is refused, naming the
newer one to resolve instead.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from crmsync.core.field_rules import FieldRules
from crmsync.core.model import SYNCED_COLUMNS, CrmCustomer

CRM, LOCAL = "crm", "local"
SIDES = (CRM, LOCAL)

# Outcomes. The first five are a customer's newest open conflict that was named (it decides).
KEPT = "kept"  # keep is the winner: the row holds it already; resolved, nothing written
SAME = "same"  # the two sides hold the same values wherever the chosen one may write: resolved
HOLDS_CHOICE = "holds_choice"  # the row holds the chosen values already: resolved, nothing written
REWRITE = "rewrite"  # planned: the chosen values are written (REWRITTEN, or CHANGED_SINCE if the UPDATE's check fails)
REWRITTEN = "rewritten"  # written and resolved
CHANGED_SINCE = "changed_since"  # the row no longer holds the winner's values: left alone, stays open
DELETED = "deleted"  # the customer's row is gone: left alone, stays open
# Named conflicts that do not decide.
SETTLED_WITH = "settled_with"  # an older open conflict named with its customer's newer one: follows it
SUPERSEDED = "superseded"  # a newer open conflict of the customer was not named: refused, stays open
ALREADY_RESOLVED = "already_resolved"
UNKNOWN = "unknown"

DECIDING = frozenset({KEPT, SAME, HOLDS_CHOICE, REWRITE, REWRITTEN, CHANGED_SINCE, DELETED})
RESOLVING = frozenset({KEPT, SAME, HOLDS_CHOICE, REWRITTEN})
LEFT_ALONE = frozenset({CHANGED_SINCE, DELETED})
REFUSED = frozenset({SUPERSEDED, ALREADY_RESOLVED, UNKNOWN})


@dataclass(frozen=True)
class ConflictRow:
    """One recorded conflict as the resolve reads it (include/sql/conflict_read.sql)."""

    id: int
    customer_id: int
    sumit_customer_id: str | None
    winner: str
    local_values: Mapping[str, Any]
    crm_values: Mapping[str, Any]
    resolution: str | None = None  # None: open
    resolved_by: str | None = None
    newest_open_id: int | None = None  # the customer's newest open conflict
    current: Mapping[str, Any] | None = None  # the customer's row now (its journaled values); None: deleted


@dataclass(frozen=True)
class Decision:
    """What the resolve does with one named conflict."""

    conflict_id: int
    outcome: str
    customer_id: int | None = None
    sumit_customer_id: str | None = None
    expected: dict[str, Any] = field(default_factory=dict)  # REWRITE: the winner's side, which the row must hold
    chosen: dict[str, Any] = field(default_factory=dict)  # REWRITE: the chosen side's values that differ
    lead: int | None = None  # SETTLED_WITH, SUPERSEDED: the conflict that decides for the customer
    note: str = ""  # ALREADY_RESOLVED: how and by which run

    @property
    def resolves(self) -> bool:
        return self.outcome in RESOLVING


def versions(row: ConflictRow, *, rules: FieldRules = FieldRules(),
             not_carried: Collection[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """The row's values with each side kept, ``{"local": ..., "crm": ...}``: the columns both
    recorded versions hold, and custom fields under ``"metadata"`` when they hold any (None: absent).

    The local side is as recorded; the CRM's is what the pull writes when the CRM wins: the local
    value of every field the rules do not take from the CRM (or keep when the CRM's is empty) or
    the API profile does not carry, and no custom field the rules exclude."""
    columns = [c for c in SYNCED_COLUMNS if c in row.local_values and c in row.crm_values]
    local_fields = {c: row.local_values.get(c) for c in SYNCED_COLUMNS}
    crm_fields = {c: row.crm_values[c] if c in row.crm_values else local_fields[c] for c in SYNCED_COLUMNS}
    taken = rules.merged(local_fields, CrmCustomer(sumit_id=str(row.sumit_customer_id), fields=crm_fields,
                                                   not_carried=frozenset(not_carried)))
    local = {c: local_fields[c] for c in columns}
    crm = {c: taken[c] for c in columns}
    local_custom, crm_custom = row.local_values.get("metadata"), row.crm_values.get("metadata")
    if isinstance(local_custom, Mapping) or isinstance(crm_custom, Mapping):
        local_custom, crm_custom = dict(local_custom or {}), dict(crm_custom or {})
        keys = sorted(set(local_custom) | set(crm_custom))
        local["metadata"] = {k: local_custom.get(k) for k in keys}
        crm["metadata"] = {k: local_custom.get(k) if rules.excludes(k) else crm_custom.get(k) for k in keys}
    return {LOCAL: local, CRM: crm}


def difference(chosen: Mapping[str, Any], winner: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``chosen`` whose value differs from ``winner``'s (custom fields one by one)."""
    diff = {k: v for k, v in chosen.items() if k != "metadata" and winner.get(k) != v}
    custom = {k: v for k, v in (chosen.get("metadata") or {}).items() if (winner.get("metadata") or {}).get(k) != v}
    if custom:
        diff["metadata"] = custom
    return diff


def holds(current: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """Whether a row (its journaled values) holds every field of ``values`` (a custom field
    that is None: absent)."""
    if any(current.get(k) != v for k, v in values.items() if k != "metadata"):
        return False
    custom = current.get("metadata") or {}
    return all(custom.get(k) == v for k, v in (values.get("metadata") or {}).items())


def plan(conflict_ids: Iterable[int], found: Iterable[ConflictRow], *, keep: str, rules: FieldRules = FieldRules(),
         not_carried: Collection[str] = frozenset()) -> list[Decision]:
    """One decision per named conflict id, in id order (see the module's docstring)."""
    if keep not in SIDES:
        raise ValueError(f"keep must be one of {', '.join(SIDES)}, not {keep!r}")
    by_id = {row.id: row for row in found}
    decisions: dict[int, Decision] = {}
    open_named: dict[int, list[ConflictRow]] = {}
    for conflict_id in sorted(set(conflict_ids)):
        row = by_id.get(conflict_id)
        if row is None:
            decisions[conflict_id] = Decision(conflict_id, UNKNOWN)
        elif row.resolution is not None:
            decisions[conflict_id] = Decision(conflict_id, ALREADY_RESOLVED, row.customer_id, row.sumit_customer_id,
                                              note=f"{row.resolution}, by {row.resolved_by}")
        else:
            open_named.setdefault(row.customer_id, []).append(row)
    for rows in open_named.values():
        lead = rows[-1]  # the newest named: ids grow with time
        newest = lead.newest_open_id if lead.newest_open_id is not None else lead.id
        if newest > lead.id:
            for row in rows:
                decisions[row.id] = Decision(row.id, SUPERSEDED, row.customer_id, row.sumit_customer_id, lead=newest)
            continue
        decisions[lead.id] = _decide(lead, keep=keep, rules=rules, not_carried=not_carried)
        for row in rows[:-1]:
            decisions[row.id] = Decision(row.id, SETTLED_WITH, row.customer_id, row.sumit_customer_id, lead=lead.id)
    return [decisions[i] for i in sorted(decisions)]


def _decide(row: ConflictRow, *, keep: str, rules: FieldRules, not_carried: Collection[str]) -> Decision:
    base = Decision(row.id, KEPT, row.customer_id, row.sumit_customer_id)
    if keep == row.winner:
        return base
    sides = versions(row, rules=rules, not_carried=not_carried)
    winner, chosen = sides[row.winner], difference(sides[keep], sides[row.winner])
    if not chosen:
        return replace(base, outcome=SAME)
    current = row.current
    if current is None:
        return replace(base, outcome=DELETED)
    if current.get("sumit_customer_id") != row.sumit_customer_id:
        return replace(base, outcome=CHANGED_SINCE)  # linked to another CRM customer since
    if holds(current, chosen):
        return replace(base, outcome=HOLDS_CHOICE)
    if not holds(current, winner):
        return replace(base, outcome=CHANGED_SINCE)
    return replace(base, outcome=REWRITE, expected=winner, chosen=chosen)


def after_rewrite(decisions: Iterable[Decision], rewritten: Collection[int]) -> list[Decision]:
    """The decisions once the rewrite statement ran: a planned rewrite whose customer it wrote
    (``rewritten``: customer ids) is REWRITTEN, one it did not (an edit committed meanwhile) is
    CHANGED_SINCE."""
    return [replace(d, outcome=REWRITTEN if d.customer_id in rewritten else CHANGED_SINCE)
            if d.outcome == REWRITE else d for d in decisions]


def leads_to_resolve(decisions: Iterable[Decision]) -> list[Decision]:
    """The deciding conflicts whose resolution stands (each settles its customer's older open ones)."""
    return [d for d in decisions if d.resolves]


def refusal(decisions: Iterable[Decision]) -> str | None:
    """Why nothing can be done, when no named conflict decides anything; None otherwise."""
    decisions = list(decisions)
    if any(d.outcome in DECIDING for d in decisions):
        return None
    parts = []
    unknown = [d.conflict_id for d in decisions if d.outcome == UNKNOWN]
    resolved = [d for d in decisions if d.outcome == ALREADY_RESOLVED]
    superseded = [d for d in decisions if d.outcome == SUPERSEDED]
    if unknown:
        parts.append(f"no conflict has id {_list(unknown)}")
    if resolved:
        parts.append("already resolved: " + _list(f"{d.conflict_id} ({d.note})" for d in resolved))
    if superseded:
        parts.append("superseded by a newer open conflict of the same customer, which decides: "
                     + _list(f"{d.conflict_id} (resolve {d.lead})" for d in superseded))
    return "; ".join(parts)


def _list(items: Iterable[Any], limit: int = 10) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:limit]) + (f" ... ({len(items) - limit} more)" if len(items) > limit else "")
