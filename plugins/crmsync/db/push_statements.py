"""The push's statements: which customers to push (the retry queue, the candidates chunk by
chunk), what SUMIT accepted marked, and the creates whose answer may have been lost. SQL from
include/sql (select_push_candidates, mark_pushed, mark_create_sent, ...)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from crmsync.core.fingerprint import custom_fingerprint
from crmsync.core.model import SYNCED_COLUMNS, LocalCustomer, PushResult
from crmsync.db.session import StoreSession, json_text, rows_json


class PushStatements(StoreSession):
    """The push's statements of :class:`crmsync.db.store.CustomerStore`."""

    # -- push -----------------------------------------------------------------------------------

    def pending_push_ids(self, ids: Sequence[int] | None) -> list[int]:
        """The push retry queue (optionally limited to ``ids``), in id order."""
        return [row[0] for row in self.fetch("select_pending_pushes", {"ids": list(ids) if ids is not None else None})]

    def unknown_ids(self, ids: Sequence[int]) -> list[int]:
        return [row[0] for row in self.fetch("select_unknown_ids", {"ids": list(ids)})]

    def push_candidates(
        self, *, ids: Sequence[int] | None, only_changed: bool, chunk_size: int = 500
    ) -> Iterator[list[LocalCustomer]]:
        """Customers to push, chunk by chunk in id order; never the whole table in memory."""
        after_id = 0
        while True:
            rows = self.fetch("select_push_candidates", {
                "after_id": after_id, "ids": list(ids) if ids is not None else None,
                "only_changed": only_changed, "limit": chunk_size,
            })
            if not rows:
                return
            yield [
                LocalCustomer(id=row[0], sumit_id=row[1], fields=dict(zip(SYNCED_COLUMNS, row[2:12])), fingerprint=row[12])
                for row in rows
            ]
            if len(rows) < chunk_size:
                return
            after_id = rows[-1][0]

    def mark_pushed(self, accepted: Sequence[tuple[LocalCustomer, PushResult]], *, synced_at: datetime) -> int:
        """Record the customers SUMIT accepted, in one statement (not committed)."""
        if not accepted:
            return 0
        params = {
            # per customer, by position: id, CRM id, fingerprint, and the journal's "after": what
            # was sent (SUMIT's values before are not known). One JSON text: psycopg writes four
            # arrays of 10,000 in Python, five times slower.
            "rows": rows_json([(c.id, r.sumit_id, c.fingerprint, {k: v for k, v in c.fields.items() if v is not None})
                                for c, r in accepted]),
            "synced_at": synced_at,
            "synced_at_text": synced_at.isoformat(),
            "empty_custom_fingerprint": custom_fingerprint({}),
            **self.run_params(),
        }
        return len(self.fetch("mark_pushed", params))

    # -- creates whose answer may have been lost ---------------------------------------------

    def mark_create_sent(self, ids: Sequence[int]) -> None:
        """Remember that these customers' creates are being sent (commit before sending)."""
        if ids:
            self.fetch("mark_create_sent", {"ids": list(ids)})

    def unconfirmed_creates(self) -> dict[int, str]:
        """Customers whose create was sent but whose CRM id was never stored: id -> fingerprint."""
        return {row[0]: row[1] for row in self.fetch("select_unconfirmed_creates")}

    def link_created(self, found: dict[int, str]) -> set[int]:
        """Store the CRM ids found for unconfirmed creates; returns the local ids linked (a CRM
        id another row already holds is not linked)."""
        if not found:
            return set()
        rows = [{"id": local_id, "sumit_customer_id": sumit_id} for local_id, sumit_id in found.items()]
        return {row[0] for row in self.fetch("link_created", {"rows": json_text(rows)})}

    def clear_create_sent(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if ids:
            self.fetch("clear_create_sent", {"ids": ids})
