"""Customers a run created in SUMIT but died before storing SUMIT's answer: found again in the
listing and linked, so they are neither inserted as new local rows nor created twice."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from crmsync.core.fingerprint import customer_fingerprints
from crmsync.core.model import CrmCustomer
from crmsync.db.store import CustomerStore
from crmsync.flows.common import CrmClient
from crmsync.flows.read_ahead import read_ahead


def link_lost_creates(customers: Sequence[CrmCustomer], lost: dict[int, str], store: CustomerStore,
                      log: logging.Logger) -> None:
    """Link CRM customers created by a run that died before storing SUMIT's answer, so they are
    neither inserted as new local rows nor created again in SUMIT. They carry the local id they
    were created with where the listing shows it (guide); elsewhere (rest's listing has no
    ExternalIdentifier) a CRM customer whose content is exactly what one, and only one, lost
    create sent is taken as it. ``lost`` loses the ids found."""
    if not lost:
        return
    found = {c.external_id: c.sumit_id for c in customers if c.external_id in lost}
    by_content: dict[str, list[int]] = {}
    for local_id, fingerprint in lost.items():
        if local_id not in found:
            by_content.setdefault(fingerprint, []).append(local_id)
    for c in customers:
        if c.external_id is not None:
            continue
        fingerprint = c.original_fingerprint or customer_fingerprints(c)[0]  # as sent, before field rules
        candidates = by_content.get(fingerprint)
        if candidates is not None and len(candidates) == 1:
            found[candidates[0]] = c.sumit_id
            del by_content[fingerprint]
    linked = store.link_created(found)
    for local_id in linked:
        del lost[local_id]
    if linked:
        log.warning("%d customers created in SUMIT by an interrupted run were found in its listing and linked "
                    "(not created again): local ids %s", len(linked), ", ".join(map(str, sorted(linked)[:20])))


def find_lost_creates(client: CrmClient, store: CustomerStore, log: logging.Logger) -> None:
    """Before a push: look up, in SUMIT's listing, customers whose create an earlier run sent
    but whose answer it never stored (it was killed), so they are not created a second time.
    Needed only where a create is not idempotent (the guide profile), and only after a crash."""
    if client.creates_are_idempotent:
        return
    lost = store.unconfirmed_creates()
    if not lost:
        return
    log.warning("%d customers were being created in SUMIT when an earlier run stopped; reading SUMIT's "
                "customer list to find them before sending them again.", len(lost))
    for page in read_ahead(client.iter_customer_pages()):
        link_lost_creates(page.customers, lost, store, log)
    store.clear_create_sent(lost)
    store.commit()
    if lost:
        log.info("%d of them are not in SUMIT: their creates are sent again.", len(lost))

