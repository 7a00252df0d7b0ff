"""Field rules: which synced fields travel in which direction, when an empty CRM value may
blank a local one, and which metadata keys (the CRM's custom fields) never cross. Pure: no
Airflow, no I/O beyond reading the rules' text. docs/field-rules.md is the user's guide.

The rules are JSON, in the Airflow Variable ``crmsync_field_rules`` or, without it, in the
file ``CRMSYNC_FIELD_RULES_FILE`` names (default: the checkout's ``include/field_rules.json``,
when it exists)::

    {"fields": {"email": "from_crm",
                "phone": {"direction": "to_crm"},
                "city": {"keep_local_when_crm_empty": true}},
     "exclude_metadata": ["password*", "*_secret"]}

How a rule takes effect, without ping-pong (see merge.plan_pull):

- :meth:`FieldRules.pulled` is what the pull compares and stores of a CRM customer: the
  excluded custom fields are gone, and a field the rules do not take from the CRM
  (``to_crm``, ``none``) holds a constant instead of the CRM's value, so a change the CRM
  makes to it is no change at all. A new local row gets the constant too (NULL; ``IL`` for
  the country), except its name, which a row needs: the CRM's.
- merge.plan_pull keeps the local value of every field the rules do not take (and of an
  empty CRM value under ``keep_local_when_crm_empty``), and records as agreed what the
  local row really holds, so the next push sees no change that is not one.
- :meth:`FieldRules.outgoing` is what a push sends: without the fields the rules do not send
  (``from_crm``, ``none``; a create still gives SUMIT its first ``from_crm`` values and a
  name); the API adapters leave the missing keys out of the request.

``FieldRules()`` is "no rules": behaviour exactly as before rules existed.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from crmsync.core.errors import ConfigurationError
from crmsync.core.fingerprint import custom_fingerprint, customer_fingerprints, fields_fingerprint
from crmsync.core.model import DEFAULT_COUNTRY, SYNCED_COLUMNS, CrmCustomer, Fields, LocalCustomer

VARIABLE = "crmsync_field_rules"  # the Airflow Variable holding the rules as JSON
FILE_ENV = "CRMSYNC_FIELD_RULES_FILE"  # a rules file's path (the Variable wins over it)
DEFAULT_FILE = Path(__file__).resolve().parents[3] / "include" / "field_rules.json"  # used when it exists

BOTH, FROM_CRM, TO_CRM, NONE = "both", "from_crm", "to_crm", "none"
DIRECTIONS = (BOTH, FROM_CRM, TO_CRM, NONE)
_TOP_KEYS = ("fields", "exclude_metadata", "comment")
_RULE_KEYS = ("direction", "keep_local_when_crm_empty", "comment")
# A field a CRM record can never leave empty: a record without a name is refused, and a missing
# country is read as IL (crmsync.core.mapping). keep_local_when_crm_empty could never act on them.
_NEVER_EMPTY = {"name": "a CRM record without a name is refused, never taken",
                "country": f"a missing CRM country is read as {DEFAULT_COUNTRY}, never as empty"}
_EXAMPLE = '{"fields": {"email": "from_crm", "city": {"keep_local_when_crm_empty": true}}, "exclude_metadata": ["password*"]}'


@dataclass(frozen=True)
class FieldRule:
    direction: str = BOTH
    keep_local_when_crm_empty: bool = False


@dataclass(frozen=True)
class FieldRules:
    """The rules in force. ``fields`` holds the fields whose rule is not the default, in
    SYNCED_COLUMNS order; ``exclude_metadata`` the glob patterns of custom fields never synced."""

    fields: tuple[tuple[str, FieldRule], ...] = ()
    exclude_metadata: tuple[str, ...] = ()
    source: str = field(default="", compare=False)  # where they were read, for messages

    def __post_init__(self) -> None:
        rules = dict(self.fields)
        directions = {column: rules.get(column, FieldRule()).direction for column in SYNCED_COLUMNS}
        derived = {
            "_not_taken": frozenset(c for c, d in directions.items() if d in (TO_CRM, NONE)),
            "_not_sent": frozenset(c for c, d in directions.items() if d in (FROM_CRM, NONE)),
            "_to_crm": frozenset(c for c, d in directions.items() if d == TO_CRM),
            "_none": frozenset(c for c, d in directions.items() if d == NONE),
            "_keep_local": frozenset(c for c, r in rules.items() if r.keep_local_when_crm_empty),
            "_patterns": tuple(p.casefold() for p in self.exclude_metadata),
            "_directions": directions,
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    # -- what the rules say ---------------------------------------------------------------

    @property
    def is_default(self) -> bool:
        """True when no rule changes anything."""
        return not self.fields and not self.exclude_metadata

    def direction(self, column: str) -> str:
        return self._directions[column]

    @property
    def not_taken(self) -> frozenset[str]:
        """Columns whose CRM value the pull never takes (``to_crm``, ``none``)."""
        return self._not_taken

    @property
    def not_sent(self) -> frozenset[str]:
        """Columns a push of an existing customer never sends (``from_crm``, ``none``; see outgoing)."""
        return self._not_sent

    def excludes(self, key: str) -> bool:
        """Whether the metadata key of a CRM custom field matches an ``exclude_metadata`` pattern.
        Case-insensitive; ``crm:<name>`` (a custom field named like crmsync's own keys) matches
        as ``<name>`` too."""
        text = key.casefold()
        texts = (text, text[4:]) if text.startswith("crm:") else (text,)
        return any(fnmatchcase(t, pattern) for pattern in self._patterns for t in texts)

    def describe(self) -> str:
        """The rules in one line, for the log."""
        if self.is_default:
            return "none"
        parts = []
        for column, rule in self.fields:
            words = [rule.direction] if rule.direction != BOTH else []
            if rule.keep_local_when_crm_empty:
                words.append("keeps the local value when the CRM's is empty")
            parts.append(f"{column} {', '.join(words)}")
        if self.exclude_metadata:
            parts.append("metadata never synced: " + ", ".join(self.exclude_metadata))
        return "; ".join(parts) + (f" (from {self.source})" if self.source else "")

    # -- applying them ----------------------------------------------------------------------

    def pulled(self, customer: CrmCustomer) -> CrmCustomer:
        """A pulled customer as the rules let it in: without the excluded custom fields, and with
        a constant for each field the rules do not take (NULL; IL for the country). The name
        stays the CRM's in ``fields`` (a new row needs one), hidden from the fingerprint only."""
        if self.is_default:
            return customer
        custom = customer.custom
        if self._patterns and custom:
            custom = {key: value for key, value in custom.items() if not self.excludes(key)}
        view = row = customer.fields
        if self._not_taken:
            view = dict(customer.fields)
            for column in self._not_taken:
                view[column] = DEFAULT_COUNTRY if column == "country" else None
            row = {**view, "name": customer.fields["name"]} if "name" in self._not_taken else view
        result = CrmCustomer(sumit_id=customer.sumit_id, fields=row, custom=custom, changed_at=customer.changed_at,
                             external_id=customer.external_id, not_carried=customer.not_carried)
        result.fingerprints = (fields_fingerprint(view), custom_fingerprint(custom))
        result.record_hash = customer.record_hash
        if row is not view:
            result.row_fingerprint = fields_fingerprint(row)
        if view is not customer.fields:
            result.original_fingerprint = customer_fingerprints(customer)[0]
        return result

    def merged(self, local: Fields, customer: CrmCustomer) -> Fields:
        """The local row after taking what the rules take of ``customer`` (as :meth:`pulled`
        made it): the local value of every field not taken, not carried by the API profile,
        or empty in the CRM under ``keep_local_when_crm_empty``; the CRM's otherwise."""
        kept = self._not_taken | customer.not_carried
        result: Fields = {}
        for column in SYNCED_COLUMNS:
            value, mine = customer.fields[column], local.get(column)
            keep = column in kept or (column in self._keep_local and value is None and mine is not None)
            result[column] = mine if keep else value
        return result

    def crm_holds(self, values: Fields, customer: CrmCustomer) -> bool:
        """Whether the CRM copy is known to hold every value of ``values`` a push would send.
        A ``to_crm`` field's CRM value is hidden (:meth:`pulled`), so never known."""
        sent = [c for c in SYNCED_COLUMNS if c not in self._not_sent and c not in customer.not_carried]
        if any(column in self._to_crm for column in sent):
            return False
        return all(customer.fields[column] == values.get(column) for column in sent)

    def outgoing(self, customer: LocalCustomer) -> LocalCustomer:
        """A local customer as the rules let it out: without the fields the rules do not send.

        A create (no CRM id yet) is different: SUMIT has no value of its own to keep, so it
        gets the ``from_crm`` fields too (their first value, SUMIT's from then on: were they
        left out, the next pull would blank them locally), and the name even under ``none``
        (SUMIT makes no customer without one). A push sends no metadata at all, so no custom
        field, excluded or not, ever leaves."""
        if not self._not_sent:
            return customer
        omitted = self._none - {"name"} if customer.sumit_id is None else self._not_sent
        return replace(customer, fields={column: value for column, value in customer.fields.items()
                                         if column not in omitted})


# -- reading them ---------------------------------------------------------------------------


def parse(text: Any, *, source: str) -> FieldRules:
    """Rules from their JSON text (None or blank: no rules); a bad entry is a ConfigurationError
    naming it and ``source``."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return FieldRules()
    if isinstance(text, (str, bytes)):
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as error:
            raise _bad(source, None, f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
        except _DuplicateKey as duplicate:
            raise _bad(source, None, f"the key {duplicate.args[0]!r} appears twice in one object") from None
    else:
        data = text  # already parsed, e.g. a Variable read with deserialize_json
    if not isinstance(data, dict):
        raise _bad(source, None, f"the rules must be a JSON object such as {_EXAMPLE}")
    _known_keys(data, _TOP_KEYS, source, None)
    rules = _field_rules(data.get("fields", {}), source)
    patterns = _patterns(data.get("exclude_metadata", []), source)
    return FieldRules(fields=rules, exclude_metadata=patterns, source=source)


def load(variable_text: Any = None) -> FieldRules:
    """The rules in force: the Airflow Variable's text when given (a blank one counts as not
    set), else the rules file, else none."""
    if variable_text is not None and not (isinstance(variable_text, str) and not variable_text.strip()):
        return parse(variable_text, source=f"Airflow Variable {VARIABLE!r}")
    path = rules_file()
    if path is None:
        return FieldRules()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"The field rules file {path} cannot be read: {error}") from None
    return parse(text, source=f"file {path}")


def rules_file() -> Path | None:
    """The rules file in force: ``CRMSYNC_FIELD_RULES_FILE`` (it must exist), else the
    checkout's include/field_rules.json when there is one, else None."""
    configured = os.environ.get(FILE_ENV, "").strip()
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigurationError(f"{FILE_ENV} is {configured!r}, which is not a readable file on this worker.")
        return path
    return DEFAULT_FILE if DEFAULT_FILE.is_file() else None


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _bad(source: str, entry: str | None, problem: str) -> ConfigurationError:
    where = f"{entry}: " if entry else ""
    return ConfigurationError(f"Bad field rules in {source}: {where}{problem}. See docs/field-rules.md.")


def _known_keys(data: dict[str, Any], known: tuple[str, ...], source: str, entry: str | None) -> None:
    for key in data:
        if key not in known:
            name = f"{entry}.{key}" if entry else key
            raise _bad(source, name, f"unknown key{_did_you_mean(key, known)}; the keys are {', '.join(known)}")


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(word).lower(), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _field_rules(data: Any, source: str) -> tuple[tuple[str, FieldRule], ...]:
    if not isinstance(data, dict):
        raise _bad(source, "fields", 'must be an object mapping a field to its rule, e.g. {"email": "from_crm"}')
    rules: dict[str, FieldRule] = {}
    for column, spec in data.items():
        entry = f"fields.{column}"
        if column not in SYNCED_COLUMNS:
            raise _bad(source, entry, f"{column!r} is not a synced field{_did_you_mean(column, SYNCED_COLUMNS)}; "
                                      f"the synced fields are {', '.join(SYNCED_COLUMNS)}")
        short = isinstance(spec, str)  # "email": "from_crm", the short form of {"direction": "from_crm"}
        if short:
            spec = {"direction": spec}
        if not isinstance(spec, dict):
            raise _bad(source, entry, f"must be a direction ({', '.join(DIRECTIONS)}) or an object with "
                                      f"direction and keep_local_when_crm_empty, not {spec!r}")
        _known_keys(spec, _RULE_KEYS, source, entry)
        direction = spec.get("direction", BOTH)
        if direction not in DIRECTIONS:
            raise _bad(source, entry if short else f"{entry}.direction",
                       f"{direction!r} is not a direction{_did_you_mean(str(direction), DIRECTIONS)}; "
                       f"use {', '.join(DIRECTIONS)}")
        keep = spec.get("keep_local_when_crm_empty", False)
        if not isinstance(keep, bool):
            raise _bad(source, f"{entry}.keep_local_when_crm_empty", f"must be true or false, not {keep!r}")
        if keep and direction not in (BOTH, FROM_CRM):
            raise _bad(source, f"{entry}.keep_local_when_crm_empty",
                       f"only means something for a field taken from the CRM (both or from_crm), and {column} is "
                       f"{direction}: the CRM's value is never taken")
        if keep and column in _NEVER_EMPTY:
            raise _bad(source, f"{entry}.keep_local_when_crm_empty", f"can never act: {_NEVER_EMPTY[column]}")
        rules[column] = FieldRule(direction, keep)
    return tuple((c, rules[c]) for c in SYNCED_COLUMNS if c in rules and rules[c] != FieldRule())


def _patterns(data: Any, source: str) -> tuple[str, ...]:
    if not isinstance(data, list):
        raise _bad(source, "exclude_metadata", f'must be a list of glob patterns such as ["password*", "*_secret"], '
                                               f"not {data!r}")
    for index, pattern in enumerate(data):
        if not isinstance(pattern, str) or not pattern.strip():
            raise _bad(source, f"exclude_metadata[{index}]", f"must be a non-empty glob pattern, not {pattern!r}")
    return tuple(dict.fromkeys(data))
