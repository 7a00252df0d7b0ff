"""Matching in the pull: link the customers both sides already hold, hold what a program cannot
decide (crmsync.core.matching says how; the statements are crmsync.db.match_statements)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from crmsync.core.field_rules import FieldRules
from crmsync.core.matching import LinkDecision, plan_link
from crmsync.core.merge import ConflictPolicy
from crmsync.db.store import CustomerStore


@dataclass
class MatchOutcome:
    linked: int = 0  # pairs linked
    held: int = 0  # records (both sides) waiting for a person
    created: int = 0  # set-aside CRM customers inserted as new (every candidate excluded by a person)
    conflicts: int = 0  # linked pairs with fields filled differently on both sides
    owed: int = 0  # linked customers whose local values the next push sends to SUMIT (an update)
    cleared: int = 0  # records waiting earlier that are no longer ambiguous


def link_matches(store: CustomerStore, *, keys: Sequence[str], policy: ConflictPolicy, rules: FieldRules,
                 pulled_at: datetime, log: logging.Logger) -> MatchOutcome:
    """After a listing was read with matching on: match the set-aside CRM customers with the
    unlinked local ones (the CRM customers as the pull prepared them: field rules applied), link the
    one-to-one pairs, hold the rest for a person, insert those
    left with no candidate. In the pull's transaction; the links journaled as direction link."""
    found = store.find_matches(keys)
    outcome = MatchOutcome()
    if found.get("link"):
        store.journal_as("link")
        try:
            for pairs in store.matched_pairs():
                decisions = [plan_link(p.local_id, p.local, p.local_updated_at, p.customer,
                                       policy=policy, pulled_at=pulled_at, rules=rules,
                                       expected_fingerprint=p.local_fingerprint)
                             for p in pairs]
                linked = store.write_links(decisions, synced_at=pulled_at, policy=policy.value)
                _count(outcome, decisions, linked)
        finally:
            store.journal_as("pull")
    outcome.held, outcome.cleared = store.hold_matches()
    if found.get("new"):
        outcome.created = store.insert_unmatched(synced_at=pulled_at)
    if outcome.linked or outcome.held:
        log.info("Matching (%s): linked %d customers both sides held (%d with conflicting fields, decided by %s; "
                 "%d owe SUMIT values the push sends as updates); %d records wait for a person's decision "
                 "(crm_sync_matches, the console's Matches page).", ", ".join(keys), outcome.linked,
                 outcome.conflicts, policy.value, outcome.owed, outcome.held)
    return outcome


def _count(outcome: MatchOutcome, decisions: Sequence[LinkDecision], linked: set[int]) -> None:
    for d in decisions:
        if d.local_id in linked:
            outcome.linked += 1
            outcome.conflicts += d.conflict is not None
            outcome.owed += d.needs_push
