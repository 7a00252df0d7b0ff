"""Matching's statements (crmsync.core.matching): the unlinked local customers' key values at the
start of a pull, the set-based match once the listing is read, the links written, the records
held for a person, and a person's decisions (crm_link_customers). SQL from include/sql/match_*.sql."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crmsync.core.matching import LinkDecision
from crmsync.core.model import SYNCED_COLUMNS, CrmCustomer, Fields
from crmsync.core.pulled import row_customer
from crmsync.db.session import StoreSession, as_columns, json_text, rows_json


@dataclass(frozen=True)
class MatchedPair:
    """A local customer and the CRM customer matching found for it, as plan_link takes them."""

    local_id: int
    key: str
    local: Fields
    local_updated_at: datetime
    local_fingerprint: str
    customer: CrmCustomer


@dataclass(frozen=True)
class HeldMatch:
    """A record waiting for a person's match decision (a crm_sync_matches row)."""

    id: int
    side: str  # "local" or "crm"
    customer_id: int | None
    sumit_customer_id: str | None
    key: str
    value: str
    candidates: list[dict[str, Any]]
    record: list[Any] | None  # a held CRM customer's row as pulled


LINK_CHUNK = 2000  # linked pairs read, decided and written at a time


class MatchStatements(StoreSession):
    """Matching's statements of :class:`crmsync.db.store.CustomerStore`."""

    def start_matching(self, keys: Sequence[str]) -> int:
        """Note the unlinked local customers' values of ``keys`` for this pull's matching; how
        many customers have one (0: nothing to match, nothing set aside)."""
        if not keys:
            return 0
        self.match_keys = tuple(keys)  # the values pull_page.sql looks up, of these keys only
        found = self.fetch("match_start", {"keys": list(keys)})[0][0]
        if found:
            self.fetch("ANALYZE crmsync_match_local", raw=True)  # a temporary table: never analyzed otherwise
        return found

    def count_matchable(self, keys: Sequence[str]) -> int:
        """Unlinked local customers with a value of ``keys``: those matching may link."""
        if not keys:
            return 0
        return self.fetch("count_matchable", {key: key in keys for key in ("tax_id", "email", "phone")})[0][0]

    def set_aside_ids(self) -> set[str]:
        """The CRM ids this transaction's page merges set aside for matching."""
        return {row[0] for row in self.fetch("SELECT sumit_customer_id FROM crmsync_match_crm", raw=True)}

    def find_matches(self, keys: Sequence[str]) -> dict[str, int]:
        """Match what the pull set aside: how many pairs link (``link``), records are held
        (``hold_crm``, ``hold_local``) and set-aside customers are new after all (``new``)."""
        self.fetch("ANALYZE crmsync_match_crm", raw=True)
        with self.hash_joins():  # its steps are aggregates, each estimated at one row
            found = dict(self.fetch("match_find", {"keys": list(keys)}))
        self.fetch("ANALYZE crmsync_match_found", raw=True)
        return found

    def matched_pairs(self) -> Iterator[list[MatchedPair]]:
        """The linked pairs, ``LINK_CHUNK`` at a time, in local id order."""
        after_id = 0
        while True:
            rows = self.fetch("match_links", {"after_id": after_id, "limit": LINK_CHUNK})
            if not rows:
                return
            yield [MatchedPair(local_id=row[0], key=row[2], local=dict(zip(SYNCED_COLUMNS, row[3:13])),
                               local_updated_at=row[13], local_fingerprint=row[14], customer=row_customer(row[15]))
                   for row in rows]
            if len(rows) < LINK_CHUNK:
                return
            after_id = rows[-1][0]

    def write_links(self, decisions: Sequence[LinkDecision], *, synced_at: datetime, policy: str) -> set[int]:
        """Link each decision's local customer to its CRM customer; record the conflicts. The
        local ids linked (a row edited or linked meanwhile is not)."""
        if not decisions:
            return set()
        rows = [{"id": d.local_id, "sumit_customer_id": d.customer.sumit_id, **d.fields, "custom": d.customer.custom,
                 "synced_fingerprint": d.synced_fingerprint, "crm_fingerprint": d.crm_fingerprint,
                 "crm_custom_fingerprint": d.custom_fingerprint, "expected_fingerprint": d.expected_fingerprint}
                for d in decisions]
        linked = {row[0] for row in self.fetch("match_link_rows", {
            "rows": rows_json(rows), "synced_at": synced_at, "synced_at_text": synced_at.isoformat()})}
        conflicts = [
            {"customer_id": d.local_id, "sumit_customer_id": d.customer.sumit_id, "winner": d.conflict.winner,
             "local_values": json_text(d.conflict.local_fields), "crm_values": json_text(d.conflict.crm_fields)}
            for d in decisions if d.conflict is not None and d.local_id in linked
        ]
        if conflicts:
            names = ["customer_id", "sumit_customer_id", "winner", "local_values", "crm_values"]
            self.fetch("insert_conflicts", {**as_columns(conflicts, names), **self.run_params(), "policy": policy})
        return linked

    def hold_matches(self) -> tuple[int, int]:
        """Record the held records in crm_sync_matches: (waiting now, cleared)."""
        waiting, cleared, _added = self.fetch("match_hold", self.run_params())[0]
        return waiting, cleared

    def insert_unmatched(self, *, synced_at: datetime) -> int:
        """Insert the set-aside CRM customers left with no candidate; how many."""
        return self.fetch("match_insert_new", {"synced_at": synced_at,
                                               "synced_at_text": synced_at.isoformat()})[0][0]

    def clear_waiting_matches(self) -> int:
        """Clear every waiting record (nothing was left to match); how many."""
        return self.fetch("match_clear", self.run_params())[0][0]

    def held_local_count(self, ids: Sequence[int] | None) -> int:
        """Local customers (of ``ids``, or all) waiting for a person's match decision."""
        return self.fetch("count_held_local", {"ids": list(ids) if ids is not None else None})[0][0]

    # -- a person's decisions (crm_link_customers) ------------------------------------------------

    def waiting_matches(self, *, ids: Sequence[int] | None = None, customer_ids: Sequence[int] | None = None,
                        sumit_customer_ids: Sequence[str] | None = None) -> list[HeldMatch]:
        rows = self.fetch("match_waiting", {"ids": list(ids) if ids is not None else None,
                                            "customer_ids": list(customer_ids) if customer_ids is not None else None,
                                            "sumit_customer_ids": list(sumit_customer_ids)
                                            if sumit_customer_ids is not None else None})
        return [HeldMatch(*row) for row in rows]

    def local_customers(self, ids: Sequence[int]) -> dict[int, tuple[str | None, Fields, datetime, str]]:
        """id -> (CRM id, fields, updated_at, fingerprint) of the local customers among ``ids``."""
        return {row[0]: (row[1], dict(zip(SYNCED_COLUMNS, row[2:12])), row[12], row[13])
                for row in self.fetch("match_local_customers", {"ids": list(ids)})}

    def linked_to(self, sumit_customer_ids: Sequence[str]) -> dict[str, int]:
        """CRM id -> the local customer linked to it, among ``sumit_customer_ids``."""
        return dict(self.fetch("match_linked_to", {"ids": list(sumit_customer_ids)}))

    def decide_matches(self, ids: Sequence[int], status: str) -> None:
        """Close waiting records as ``linked`` or ``separate`` by this run."""
        if ids:
            self.fetch("match_decide", {"ids": list(ids), "status": status, **self.run_params()})

    def exclude_pairs(self, pairs: Sequence[tuple[int, str]], reason: str) -> None:
        """Pairs (local id, CRM id) never to be matched automatically."""
        if pairs:
            self.fetch("match_exclude", {"customer_ids": [p[0] for p in pairs], "sumit_customer_ids": [p[1] for p in pairs],
                                         "reason": reason, **self.run_params()})

    def unlink(self, ids: Sequence[int]) -> list[tuple[int, str]]:
        """Remove the CRM id (and what was agreed with the CRM) from these local customers:
        (local id, CRM id it had) of those unlinked."""
        return [(row[0], row[1]) for row in self.fetch("match_unlink", {"ids": list(ids)})]
