"""The pull's statements: one pulled page merged in one statement, the decisions on linked
customers written, vanished customers flagged, rejected records queued; and the rows a page
travels to PostgreSQL as. SQL from include/sql (pull_page, update_pulled, flag_vanished, ...)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from crmsync.core.merge import PullDecision, SyncState
from crmsync.core.model import SYNCED_COLUMNS, RejectedRecord
from crmsync.db.session import FAST_JSON, ErrorRow, GaveUp, StoreSession, as_columns, json_text, rows_json


# The console's search reads the customers the packs do not hold row by row (about 25 ms for
# 200,000 on the project's machine): past this many, a pull packs them again (2 s at 1,000,000;
# docs/performance.md). Below it a table is never packed, so a first pull of 100,000 pays nothing.
SEARCH_PACK_AFTER = 200_000


def encode_rows(rows: Sequence[list[Any]]) -> bytes:
    """Pulled rows (crmsync.core.pulled) as :meth:`CustomerStore.pull_page` takes them: one JSON array
    of arrays, by position (include/sql/pull_page.sql reads them by index), as UTF-8 bytes,
    sent as they are (a Python str of Hebrew text takes twice the memory, and would be encoded
    again). Needs no database, so the pull prepares page n+1 this way while page n is merged."""
    try:
        return FAST_JSON.encode(rows)
    except (msgspec.MsgspecError, TypeError, OverflowError):
        return json_text(rows).encode("utf-8")


def decode_rows(encoded: bytes | str) -> list[list[Any]]:
    """The rows :func:`encode_rows` wrote (also as text, as a held pull's listing keeps them)."""
    return json.loads(encoded)


class PullStatements(StoreSession):
    """The pull's statements of :class:`crmsync.db.store.CustomerStore`."""

    # -- the pull ------------------------------------------------------------------------------

    def pull_page(
        self, rows: bytes, *, also_seen: Sequence[str], synced_at: datetime, full_resync: bool, note_seen: bool = True,
        matching: bool = False, known: bool = False,
    ) -> tuple[int, int, dict[str, SyncState]]:
        """Merge what needs no decision from one pulled page, in one statement (include/sql/pull_page.sql).

        ``rows`` are the page's customers, one per CRM id, as :func:`encode_rows` wrote them.
        Remembers their CRM ids (and ``also_seen``) as seen by this pull (unless ``note_seen`` is
        false: nothing will be flagged as vanished); with ``matching``, sets aside the customers
        no local row is linked to that share a key value with an unlinked local customer
        (:meth:`MatchStatements.start_matching`); inserts the other customers no local row is
        linked to; with ``known`` (linked customers may be on the page), records the record hash of
        those whose CRM copy is unchanged. Returns how many it inserted, how many it set aside and, by CRM id, the local
        state of the linked customers whose CRM copy changed since the last pull (every linked
        one with ``full_resync``): those that merge.plan_pull must decide.
        """
        result = self.fetch("pull_page", {
            "rows": rows, "also_seen": rows_json(list(also_seen)), "synced_at": synced_at,
            "synced_at_text": synced_at.isoformat(), "full_resync": full_resync, "note_seen": note_seen,
            "match_keys": list(self.match_keys),
        }, switch=("matching", matching, "known", known))
        states = {}
        for row in result:
            if row[2] is not None:
                states[row[3]] = SyncState(
                    id=row[2], fields=dict(zip(SYNCED_COLUMNS, row[4:14])), synced_fingerprint=row[14],
                    crm_fingerprint=row[15], crm_custom_fingerprint=row[16], updated_at=row[17],
                    local_fingerprint=row[18],
                )
        return result[0][0], result[0][1], states

    def apply_pull(self, decisions: Iterable[PullDecision], *, synced_at: datetime, policy: str) -> set[int]:
        """Write the decisions taken on linked customers: one UPDATE and one conflicts INSERT at most.

        Returns the ids of the rows updated; a row edited locally since it was read is not.
        """
        stamp = synced_at.isoformat()
        updates, conflicts = [], []
        for d in decisions:
            c = d.customer
            if d.write:
                updates.append({
                    "id": d.local_id, "replace_fields": d.replace_fields, "merge_custom": d.merge_custom,
                    "mark_agreed": d.mark_agreed, **c.fields, "custom": c.custom,
                    "fingerprint": d.fingerprint, "agreed_fingerprint": d.agreed_fingerprint,
                    "custom_fingerprint": d.custom_fingerprint,
                    "expected_fingerprint": d.expected_fingerprint, "record_hash": c.record_hash,
                })
            if d.conflict is not None:
                conflicts.append({
                    "customer_id": d.local_id, "sumit_customer_id": c.sumit_id, "winner": d.conflict.winner,
                    "local_values": json_text(d.conflict.local_fields), "crm_values": json_text(d.conflict.crm_fields),
                })
        updated = []
        if updates:
            updated = self.fetch(
                "update_pulled", {"rows": rows_json(updates), "synced_at": synced_at, "synced_at_text": stamp}
            )
        if conflicts:
            names = ["customer_id", "sumit_customer_id", "winner", "local_values", "crm_values"]
            self.fetch("insert_conflicts", {**as_columns(conflicts, names), **self.run_params(), "policy": policy})
        return {row[0] for row in updated}

    def unknown_records(self, ids: Sequence[str], hashes: Sequence[str], *, note_seen: bool) -> list[int]:
        """The positions of a page's records (by CRM id and record hash) that are not the record
        the table's customer of that id was last pulled with; the others are noted as seen by
        this pull unless ``note_seen`` is false (include/sql/pull_unknown_records.sql)."""
        params = {"ids": FAST_JSON.encode(list(ids)).decode("utf-8"),
                  "hashes": FAST_JSON.encode(list(hashes)).decode("utf-8"), "note_seen": note_seen}
        return [row[0] for row in self.fetch("pull_unknown_records", params)]

    def resolve_pull_errors_after_complete_pull(self, still_rejected: Sequence[str]) -> None:
        self.fetch("resolve_pull_errors_after_complete_pull", {"still_rejected": list(still_rejected)})

    def compact_customer_counts(self) -> None:
        """Fold crm_sync_customer_counts' rows into one (the console's totals; never waits)."""
        self.fetch("compact_customer_counts")

    def pack_search_rows_if_due(self) -> int | None:
        """Pack the console's search rows again (crm_sync_customer_search_packed, include/sql/schema.sql)
        when the packs leave SEARCH_PACK_AFTER customers or more to the search rows; the customers
        packed, or None when not due. Writers to sumit_customers wait until the pull commits."""
        if not self.fetch("search_pack_due", {"pack_after": SEARCH_PACK_AFTER})[0][0]:
            return None
        return int(self.fetch("search_pack")[0][0])

    # -- vanished customers ---------------------------------------------------------------------

    def start_seen(self) -> None:
        """Begin collecting the CRM ids this pull sees (a temporary table of this session)."""
        self.fetch("seen_ids")

    def flag_vanished(self, *, pulled_at: datetime) -> tuple[int, int]:
        """After a complete pull: (newly flagged as missing from the CRM, unflagged as back)."""
        self.fetch("analyze_seen_ids")
        with self.hash_joins():  # the pull's own inserts are not in sumit_customers' statistics yet
            flagged, unflagged = self.fetch("flag_vanished", {"pulled_at_text": pulled_at.isoformat()})[0]
        return flagged, unflagged

    def record_rejected(self, rejected: Iterable[RejectedRecord]) -> tuple[list[str], list[GaveUp]]:
        """Queue rejected CRM records; returns their keys and those given up."""
        rows = [ErrorRow(phase="pull", error=r.reason, sumit_customer_id=r.sumit_id, record=r.excerpt) for r in rejected]
        return [row.key for row in rows], self.record_errors(rows)
