"""A person's match decisions (DAG crm_link_customers): link pairs a person chose, separate held
records that are different customers, unlink pairs that were wrongly linked. All or nothing:
one refused decision and nothing is written."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from crmsync.core.errors import ConfigurationError, CrmSyncError
from crmsync.core.field_rules import FieldRules
from crmsync.core.matching import plan_link
from crmsync.core.merge import ConflictPolicy
from crmsync.core.pulled import row_customer
from crmsync.core.summary import SyncCounts
from crmsync.db.store import CustomerStore
from crmsync.flows.common import utcnow


def run_link(
    store: CustomerStore,
    *,
    links: Sequence[tuple[int, str]] = (),
    separate: Sequence[int] = (),
    unlink: Sequence[int] = (),
    policy: ConflictPolicy = ConflictPolicy.NEWER_WINS,
    rules: FieldRules = FieldRules(),
    log: logging.Logger,
    now: Callable[[], datetime] = utcnow,
) -> tuple[SyncCounts, list[int]]:
    """Apply the decisions in one transaction; the counts and the local ids whose linked CRM
    customer lacks values they hold (the push sends them, as updates).

    ``links``: pairs (local id, CRM id). The CRM customer must be one the last pull held for a
    decision (crm_sync_matches keeps it as pulled); neither side may be linked to another. The
    link writes what a match does (blanks filled both ways, conflicts by ``policy``, recorded).
    ``separate``: ids of waiting crm_sync_matches rows: the record and its candidates are never
    proposed again, and cross as new records at the next sync. ``unlink``: local ids whose CRM
    id is removed; the pair is never matched again automatically.
    """
    if store.dry_run:
        store.ensure_schema()  # inside the dry run's transaction: a fresh database works too
    links = [(int(local_id), str(crm_id)) for local_id, crm_id in links]
    counts = SyncCounts(considered=len(links) + len(separate) + len(unlink))
    problems: list[str] = []
    _refuse_repeats(links, separate, unlink, problems)
    local = store.local_customers([local_id for local_id, _ in links] + list(unlink))
    owners = store.linked_to([crm_id for _, crm_id in links])
    held = {m.sumit_customer_id: m for m in store.waiting_matches(sumit_customer_ids=[c for _, c in links])
            if m.side == "crm"}
    todo = []
    for local_id, crm_id in links:
        current = local.get(local_id)
        if current is None:
            problems.append(f"links: local customer {local_id} does not exist")
        elif current[0] == crm_id:
            log.info("Local customer %d is linked to CRM customer %s already: nothing to do.", local_id, crm_id)
        elif current[0] is not None:
            problems.append(f"links: local customer {local_id} is linked to CRM customer {current[0]} already "
                            "(unlink it first)")
        elif crm_id in owners:
            problems.append(f"links: CRM customer {crm_id} is linked to local customer {owners[crm_id]} already")
        elif crm_id not in held:
            problems.append(f"links: CRM customer {crm_id} is not waiting for a match decision (crm_sync_matches): "
                            "only a customer the last pull held can be linked by hand; check the id, or run a pull")
        else:
            todo.append((local_id, crm_id))
    chosen = store.waiting_matches(ids=list(separate)) if separate else []
    missing = sorted(set(separate) - {m.id for m in chosen})
    if missing:
        problems.append(f"separate: {', '.join(map(str, missing))} are not records waiting for a match decision")
    for local_id in unlink:
        current = local.get(local_id)
        if current is None:
            problems.append(f"unlink: local customer {local_id} does not exist")
        elif current[0] is None:
            problems.append(f"unlink: local customer {local_id} is not linked to a CRM customer")
    if problems:
        raise ConfigurationError("Nothing was written: " + "; ".join(problems) + ".")

    at = now()
    store.journal_as("link")
    decisions = [plan_link(local_id, local[local_id][1], local[local_id][2], row_customer(held[crm_id].record),
                           policy=policy, pulled_at=at, rules=rules, expected_fingerprint=local[local_id][3])
                 for local_id, crm_id in todo]
    linked = store.write_links(decisions, synced_at=at, policy=policy.value)
    if len(linked) != len(decisions):
        store.rollback()
        raise CrmSyncError("Nothing was written: a customer to link was changed or linked by someone else while this "
                           "run read it; run it again.")
    waiting = store.waiting_matches(customer_ids=[local_id for local_id, _ in todo],
                                    sumit_customer_ids=[crm_id for _, crm_id in todo])
    store.decide_matches([m.id for m in waiting], "linked")
    counts.linked = len(linked)
    counts.conflicts = sum(d.conflict is not None for d in decisions)
    for d in decisions:
        log.info("Linked local customer %d to CRM customer %s%s%s.", d.local_id, d.customer.sumit_id,
                 f"; filled here: {', '.join(d.filled_local)}" if d.filled_local else "",
                 f"; SUMIT gets: {', '.join(d.filled_crm)}" if d.filled_crm else "")

    pairs = []
    for m in chosen:
        if m.side == "local":
            pairs += [(m.customer_id, str(c["sumit_customer_id"])) for c in m.candidates]
        else:
            pairs += [(int(c["customer_id"]), m.sumit_customer_id) for c in m.candidates]
    store.exclude_pairs(pairs, "separate")
    store.decide_matches([m.id for m in chosen], "separate")
    counts.separated = len(chosen)
    if chosen:
        log.info("%d held records are different customers from their candidates: they cross as new records at the "
                 "next sync, and are never proposed with those candidates again.", len(chosen))

    unlinked = store.unlink(list(unlink))
    store.exclude_pairs(unlinked, "unlink")
    counts.unlinked = len(unlinked)
    for local_id, crm_id in unlinked:
        log.info("Unlinked local customer %d from CRM customer %s; the pair is never matched again automatically.",
                 local_id, crm_id)
    counts.changed = store.changed_count("link")
    store.commit()
    return counts, sorted(d.local_id for d in decisions if d.needs_push)


def _refuse_repeats(links: list[tuple[int, str]], separate: Sequence[int], unlink: Sequence[int],
                    problems: list[str]) -> None:
    for what, values in (("local id", [l for l, _ in links]), ("CRM id", [c for _, c in links])):
        repeated = sorted({v for v in values if values.count(v) > 1}, key=str)
        if repeated:
            problems.append(f"links: {what} {', '.join(map(str, repeated))} appears in more than one pair")
    both = sorted({l for l, _ in links} & set(unlink))
    if both:
        problems.append(f"local customer {', '.join(map(str, both))} is both linked and unlinked")
