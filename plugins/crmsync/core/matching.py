"""Matching: linking a customer both systems already hold instead of duplicating it (pure).

A company that adopts crmsync has customers on both sides, many of them the same people.
Before the pull inserts and before the push creates, unlinked local customers are matched with
CRM customers no local row is linked to, by keys in order (``match_keys``):

- ``tax_id``: the company or ID number, as text, without spaces or dashes;
- ``email``: trimmed, in any case;
- ``phone`` (only when configured): Israeli spellings made one (``050-1234567``,
  ``+972501234567``, ``00972 50 123 4567`` and ``0501234567`` are the same number).

An empty value never matches, and a name alone never links. A pair links only when each side
has exactly one candidate on the other, by the first key that finds any; otherwise every record
of the group waits for a person (crm_sync_matches). The matching itself runs in PostgreSQL, set
based (include/sql/match_*.sql, whose ``crmsync_match_value`` is the twin of
:func:`normalize`); this module holds the keys, the normal form, and what a link writes
(:func:`plan_link`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmsync.core.errors import ConfigurationError
from crmsync.core.fingerprint import customer_fingerprints, fields_fingerprint
from crmsync.core.merge import Conflict, ConflictPolicy
from crmsync.core.model import SYNCED_COLUMNS, CrmCustomer, Fields

if TYPE_CHECKING:
    from crmsync.core.field_rules import FieldRules

KEYS = ("tax_id", "email", "phone")
DEFAULT_KEYS = ("tax_id", "email")
VARIABLE = "crmsync_match_keys"  # an Airflow Variable: the default for every run
EXTRA = "match_keys"  # the sumit connection's extra: the default for runs on that connection

_SPACES = " \t\n\r\f\v"  # ASCII whitespace, as PostgreSQL's twin strips it
_SPACES_AND_DASHES = str.maketrans("", "", _SPACES + "-")
_NOT_DIGITS = re.compile(r"[^0-9]")


def normalize(key: str, value: str | None) -> str | None:
    """A key's value as matching compares it; None when empty (never matches)."""
    if value is None:
        return None
    if key == "tax_id":
        result = value.translate(_SPACES_AND_DASHES)
    elif key == "email":
        result = value.strip(_SPACES).lower()
    elif key == "phone":
        digits = _NOT_DIGITS.sub("", value)
        result = re.sub(r"^(00)?972", "0", digits)
    else:
        raise ValueError(f"unknown match key {key!r}")
    return result or None


def parse_keys(value: Any, *, source: str) -> tuple[str, ...]:
    """Match keys from a run param, a Variable or a connection extra: a list, a JSON list, or
    comma-separated text, e.g. ``["tax_id", "email"]`` or ``tax_id,email``. Empty: no matching."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ConfigurationError(f"{source}: match keys {text!r} are not valid JSON.") from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError(f"{source}: match keys must be a list of key names, e.g. [\"tax_id\", \"email\"].")
    unknown = [k for k in value if k not in KEYS]
    if unknown:
        raise ConfigurationError(
            f"{source}: unknown match key(s) {', '.join(map(repr, unknown))}; choose from {', '.join(KEYS)} "
            "(a name alone never links)."
        )
    if len(set(value)) != len(value):
        raise ConfigurationError(f"{source}: a match key is named twice in {list(value)}.")
    return tuple(value)


def resolve_keys(param: Any, variable: Any, extra: Any) -> tuple[tuple[str, ...], str]:
    """The keys in force and where they came from: the run's ``match_keys`` param when given,
    else the Variable ``crmsync_match_keys``, else the connection's extra ``match_keys``,
    else tax id then e-mail."""
    for value, source in ((param, "param match_keys"), (variable, f"Variable {VARIABLE}"),
                          (extra, f"sumit connection extra {EXTRA}")):
        if value is not None and value != "":
            return parse_keys(value, source=source), source
    return DEFAULT_KEYS, "default"


@dataclass
class LinkDecision:
    """What linking one local customer to one CRM customer writes."""

    local_id: int
    customer: CrmCustomer  # the CRM copy, as the field rules let it in
    fields: Fields  # the local row once linked
    filled_local: list[str] = field(default_factory=list)  # columns empty locally, taken from the CRM
    filled_crm: list[str] = field(default_factory=list)  # columns empty in the CRM, sent to it (an update)
    conflict: Conflict | None = None  # columns filled differently on both sides, decided by the policy
    expected_fingerprint: str | None = None  # the local row's as read: a racing edit is not overwritten
    synced_fingerprint: str = ""  # what the push compares with: the CRM's when the CRM still lacks something
    fields_fingerprint: str = ""  # of ``fields``, computed once by plan_link

    @property
    def crm_fingerprint(self) -> str:
        return customer_fingerprints(self.customer)[0]

    @property
    def custom_fingerprint(self) -> str:
        return customer_fingerprints(self.customer)[1]

    @property
    def needs_push(self) -> bool:
        return self.synced_fingerprint != (self.fields_fingerprint or fields_fingerprint(self.fields))


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _same(column: str, mine: str, theirs: str) -> bool:
    if column in KEYS:
        return normalize(column, mine) == normalize(column, theirs)
    return mine.strip() == theirs.strip()


def plan_link(
    local_id: int,
    local: Fields,
    local_updated_at: datetime,
    customer: CrmCustomer,
    *,
    policy: ConflictPolicy,
    pulled_at: datetime,
    rules: "FieldRules",
    expected_fingerprint: str | None = None,
) -> LinkDecision:
    """Link ``local`` to ``customer`` (the CRM copy as ``rules.pulled`` made it).

    A field empty on one side is filled from the other: locally now, in SUMIT by the next push
    (an update: the row then holds the CRM id). A field filled differently on both sides is a
    conflict the policy decides, recorded with both sides' values (blanks already filled), so
    the Conflicts page can reverse it. Spellings a key makes equal (an e-mail's case, a tax id's
    dashes) are no conflict and no change: each side keeps its own. Fields the rules do not take from the CRM, or the API
    profile does not carry, keep the local value; fields the rules do not send are never
    counted as owed to the CRM.
    """
    kept = rules.not_taken | customer.not_carried
    not_sent = rules.not_sent | customer.not_carried
    result: Fields = {}
    filled_local, filled_crm, differing, spelled = [], [], [], []
    for column in SYNCED_COLUMNS:
        mine, theirs = local.get(column), customer.fields.get(column)
        if column in kept:
            result[column] = mine
        elif _blank(mine) and not _blank(theirs):
            result[column] = theirs
            filled_local.append(column)
        elif not _blank(mine) and _blank(theirs):
            result[column] = mine
            if column not in not_sent:
                filled_crm.append(column)
        elif _blank(mine) or mine == theirs:  # both empty, or the same value
            result[column] = mine
        elif _same(column, mine, theirs):  # the same value spelled apart: each side keeps its spelling
            result[column] = mine
            spelled.append(column)
        else:
            result[column] = mine
            differing.append(column)
    conflict = None
    if differing:
        winner = _winner(policy, local_updated_at, customer, pulled_at)
        local_side = dict(result)
        crm_side = {**result, **{column: customer.fields.get(column) for column in differing}}
        conflict = Conflict(winner=winner, local_fields=local_side, crm_fields=crm_side)
        if winner == "crm":
            result = dict(crm_side)
    decision = LinkDecision(local_id, customer, result, filled_local, filled_crm, conflict, expected_fingerprint)
    # Agreed when the CRM holds every value a push would send (a spelling apart counts as held);
    # else the CRM copy's fingerprint, so that the push sends them.
    agreed = rules.crm_holds({**result, **{c: customer.fields.get(c) for c in spelled}}, customer)
    decision.fields_fingerprint = fields_fingerprint(result)
    decision.synced_fingerprint = decision.fields_fingerprint if agreed else customer_fingerprints(customer)[0]
    if not agreed and decision.synced_fingerprint == decision.fields_fingerprint:
        decision.synced_fingerprint = ""  # never equal to the row's: the push still sends it
    return decision


def _winner(policy: ConflictPolicy, local_updated_at: datetime, customer: CrmCustomer, pulled_at: datetime) -> str:
    if policy is ConflictPolicy.CRM_WINS:
        return "crm"
    if policy is ConflictPolicy.LOCAL_WINS:
        return "local"
    return "local" if local_updated_at > (customer.changed_at or pulled_at) else "crm"


def describe_keys(keys: Iterable[str]) -> str:
    keys = list(keys)
    return ", then ".join(k.replace("_", " ") for k in keys) if keys else "none (matching is off)"
