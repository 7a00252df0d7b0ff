"""The mass-change guard: from what a run is about to do, decide whether a person must approve
it first (pure: no Airflow, no I/O).

A pull computes its whole plan before anything is committed (crmsync.flows.pull); the plan's
counts come from the change journal of the uncommitted transaction. When the plan would
change, blank a field on, or flag as vanished more than ``max_change_ratio`` of the customers
already linked to the CRM, and at least ``min_mass_change`` of them, the pull writes nothing
and the run waits for approval (Airflow's human-in-the-loop ApprovalOperator). New customers
are never a mass change: a first pull, or a pull into a table of fewer than
``min_mass_change`` linked customers, never waits. A push waits when it would send more than
``max_push_without_approval`` customers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Why these defaults: a nightly sync of a live CRM changes a few percent of its customers; a
# fifth of them changing (or blanking, or vanishing) in one night is what a broken export, a
# bulk edit by mistake or an empty listing looks like. Below 100 customers one person's
# afternoon of edits can be a fifth of the table: not worth stopping the sync for.
DEFAULT_MAX_CHANGE_RATIO = 0.2
DEFAULT_MIN_MASS_CHANGE = 100
# A push of more than this many customers in one run (a first sync of a big local table, a
# script that touched every row) waits for a person.
DEFAULT_MAX_PUSH_WITHOUT_APPROVAL = 1000

EXAMPLES_PER_FIELD = 3


@dataclass(frozen=True)
class GuardLimits:
    max_change_ratio: float = DEFAULT_MAX_CHANGE_RATIO
    min_mass_change: int = DEFAULT_MIN_MASS_CHANGE
    max_push_without_approval: int = DEFAULT_MAX_PUSH_WITHOUT_APPROVAL


@dataclass
class FieldChange:
    """One field in a pull's plan: how many existing customers it changes, and blanks."""

    field: str  # a column, or metadata.<custom field>
    changed: int
    blanked: int
    examples: list[dict[str, Any]] = field(default_factory=list)  # {customer_id, sumit_customer_id, before, after}


@dataclass
class PullPlan:
    """What a pull is about to do to the customers that existed before it."""

    existing: int  # customers linked to a CRM id before the pull
    created: int = 0
    changed: int = 0  # existing customers whose values change (the vanished flag aside)
    vanished: int = 0  # existing customers newly flagged as missing from the CRM
    fields: list[FieldChange] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        """What an approved plan must still be when it is applied: every count, no examples."""
        return {"created": self.created, "changed": self.changed, "vanished": self.vanished,
                "fields": {f.field: [f.changed, f.blanked] for f in self.fields}}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PullPlan":
        return cls(**{**data, "fields": [FieldChange(**f) for f in data.get("fields", [])]})


def _share(count: int, of: int) -> str:
    return f"{count / of:.0%}" if of else "-"


def pull_reasons(plan: PullPlan, limits: GuardLimits) -> list[str]:
    """Why this plan needs a person's approval; empty when it does not."""
    if plan.existing < max(1, limits.min_mass_change):
        return []
    limit = limits.max_change_ratio * plan.existing

    def over(count: int) -> bool:
        return count > limit and count >= limits.min_mass_change

    ratio = f"max_change_ratio {limits.max_change_ratio:.0%}"
    reasons = []
    if over(plan.changed):
        reasons.append(f"it would change {plan.changed:,} of the {plan.existing:,} existing customers "
                       f"({_share(plan.changed, plan.existing)}), more than {ratio}")
    for f in plan.fields:
        if over(f.blanked):
            reasons.append(f"it would blank {f.field} on {f.blanked:,} customers "
                           f"({_share(f.blanked, plan.existing)}), more than {ratio}")
    if over(plan.vanished):
        reasons.append(f"it would flag {plan.vanished:,} of the {plan.existing:,} existing customers as no longer "
                       f"in the CRM ({_share(plan.vanished, plan.existing)}), more than {ratio}: "
                       "an empty or cut-short listing looks like this")
    return reasons


def push_reasons(count: int, limits: GuardLimits) -> list[str]:
    if count > limits.max_push_without_approval:
        return [f"it would push {count:,} customers to SUMIT, more than max_push_without_approval "
                f"{limits.max_push_without_approval:,}"]
    return []


def _value(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_pull_plan(plan: PullPlan, reasons: list[str]) -> str:
    """The approval's text (Markdown): why it waits, counts per field, a few examples."""
    lines = ["This pull wrote nothing yet. It waits because " + "; ".join(reasons) + ".", "",
             f"Existing customers: {plan.existing:,}. The plan: create {plan.created:,}, change {plan.changed:,}, "
             f"flag {plan.vanished:,} as no longer in the CRM.", ""]
    if plan.fields:
        lines += ["| field | customers changed | of them blanked |", "|---|---:|---:|"]
        lines += [f"| {_md(f.field)} | {f.changed:,} | {f.blanked:,} |" for f in plan.fields]
        lines += ["", "Examples (customer id: before → after):", ""]
        for f in plan.fields:
            for e in f.examples:
                lines.append(f"- {_md(f.field)}, customer {e['customer_id']} (CRM {_md(str(e['sumit_customer_id']))}): "
                             f"{_md(_value(e['before']))} → {_md(_value(e['after']))}")
    lines += ["", "Approve: the plan is applied exactly as computed (if the table changed meanwhile, nothing is "
              "written and the run fails). Reject, or no answer in time: nothing is written and the run fails."]
    return "\n".join(lines)


def describe_push(count: int, examples: list[dict[str, Any]], reasons: list[str]) -> str:
    lines = ["Nothing was sent yet. This push waits because " + "; ".join(reasons) + ".", "",
             "First customers it would send:", ""]
    lines += [f"- {e['id']}: {_md(_value(e['name']))}" for e in examples]
    lines += ["", "Approve: the push goes on. Reject, or no answer in time: nothing is sent and the run fails."]
    return "\n".join(lines)


def _md(text: str) -> str:
    """CRM text shown as text in the approval's Markdown: no markup, links or HTML from it."""
    out = []
    for ch in text.replace("\n", " ").replace("\r", " "):
        out.append("\\" + ch if ch in "\\`*_{}[]()#+-.!|<>~" else ch)
    return "".join(out)
