"""What the console reads from the customers database (plain psycopg, no Airflow).

Every statement is a file in include/sql (``console_*.sql``); each call is one short
read-only transaction, except ``ignore_errors``. Values come back as dicts; the pages escape
them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from crmsync.console.inputs import MAX_BIGINT, MAX_PAGE, MAX_SEARCH_LENGTH
from crmsync.console.outcome import STATE_KEYS
from crmsync.db import search_indexes, sql

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# A search with no state filter counts its matches up to this many; past it the page says "more
# than 1,000" (counting every customer a common word matches is what made such searches slow).
SEARCH_COUNT_LIMIT = 1000
_NUMBER = re.compile(r"[0-9 ()+\-./]+")


@dataclass(frozen=True)
class CustomerQuery:
    """The Customers list's search, state filter and page, checked."""

    search: str | None = None
    state: str | None = None
    page: int = 1
    page_size: int = PAGE_SIZE

    @classmethod
    def parse(cls, search: str | None, state: str | None, page: Any = 1, page_size: Any = PAGE_SIZE) -> "CustomerQuery":
        search = (search or "").strip()[:MAX_SEARCH_LENGTH] or None
        if search is not None and "\x00" in search:
            raise ValueError("q: must not contain a NUL character")
        state = (state or "").strip() or None
        if state is not None and state not in STATE_KEYS:
            raise ValueError(f"unknown sync state {state!r}; choose one of: {', '.join(STATE_KEYS)}")
        try:
            page, page_size = int(page), int(page_size)
        except (TypeError, ValueError):
            raise ValueError("page and page_size must be whole numbers") from None
        if not 1 <= page <= MAX_PAGE or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page must be between 1 and {MAX_PAGE:,} and page_size between 1 and {MAX_PAGE_SIZE}")
        return cls(search, state, page, page_size)

    def kind(self) -> str | None:
        """What the search looks like: an ``email`` (has "@"), a ``number`` (digits, maybe with
        + - ( ) . / and spaces: a phone, a local id or a CRM id) or ``text`` (a name, part of an
        e-mail, a CRM id)."""
        if not self.search:
            return None
        if "@" in self.search:
            return "email"
        if _NUMBER.fullmatch(self.search) and any(ch.isdigit() for ch in self.search):
            return "number"
        return "text"

    def short(self) -> bool:
        """A search of fewer than three characters (of digits, for a number): no trigram of it
        exists, so a trigram index would read all of itself to answer it."""
        kind = self.kind()
        if kind is None:
            return False
        return len(self._digits() if kind == "number" else self.search or "") < 3

    def _digits(self) -> str:
        """The search's digits (a number's: its phone, id or CRM id)."""
        return "".join(ch for ch in self.search or "" if ch.isdigit())

    def counted(self) -> bool:
        """Whether the total is counted only up to SEARCH_COUNT_LIMIT: a search with no state, or
        with the synced one (nearly every customer is synced: a common word matches as many)."""
        return self.search is not None and self.state in (None, "synced")

    def params(self) -> dict[str, Any]:
        kind = self.kind()
        digits = self._digits() if kind == "number" else ""
        search_id = int(digits) if digits and digits == self.search and int(digits) <= MAX_BIGINT else None
        pattern = email_key = None
        if self.search:
            pattern = f"%{_like_escaped(self.search)}%"
            # An e-mail's domain is what most addresses share (a trigram index reads a long list
            # for each of its trigrams): the index is asked for the part up to the "@", and each
            # row it finds is checked against the whole search.
            local = self.search.split("@", 1)[0]
            email_key = f"%{_like_escaped(local)}@%" if kind == "email" and len(local) >= 3 else pattern
        return {"search": self.search, "kind": kind, "pattern": pattern, "email_key": email_key, "digits": f"%{digits}%" if digits else None,
                "search_id": search_id, "state": self.state, "limit": self.page_size,
                "count_limit": SEARCH_COUNT_LIMIT + 1, "other_states": [s for s in STATE_KEYS if s != self.state],
                "offset": (self.page - 1) * self.page_size}


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ConsoleQueries:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def _rows(self, name: str, params: dict[str, Any] | None = None, *, write: bool = False,
              switch: tuple[str | bool, ...] | None = None, no_bitmaps: bool = False) -> list[dict[str, Any]]:
        """One statement in a transaction of its own (a page never holds a lock while it renders)."""
        try:
            with self.conn.cursor() as cur:
                # Planned with the values each time (never a generic prepared plan): "no search" and
                # "any state" then fold away, and the sync state is computed only for the page's rows.
                statement = sql.load_switched(name, *switch) if switch else sql.load(name)
                # No JIT compiling: it costs a second before a page over a big table answers
                # (PostgreSQL compiles any statement its planner costs high), and saves nothing here.
                cur.execute("SET LOCAL jit = off")
                if no_bitmaps:  # a short search: no trigram index (they answer through bitmaps only)
                    cur.execute("SET LOCAL enable_bitmapscan = off")
                cur.execute(statement, params or {}, prepare=False)
                rows = cur.fetchall() if cur.description else []
                columns = [d.name for d in cur.description or ()]
        except BaseException:
            self.conn.rollback()
            raise
        if write:
            self.conn.commit()
        else:
            self.conn.rollback()
        return [dict(zip(columns, row)) for row in rows]

    def _value(self, name: str, params: dict[str, Any] | None = None) -> Any:
        rows = self._rows(name, params)
        return next(iter(rows[0].values())) if rows else None

    def tables_exist(self) -> bool:
        return bool(self._value("console_tables_exist"))

    # -- customers ----------------------------------------------------------------------------
    def customers(self, query: CustomerQuery) -> tuple[list[dict[str, Any]], int]:
        # No search, and every customer, those in sync or those changed: counts of small sets and
        # the page through the primary key; else the matching customers (a search, or a state's
        # candidates) first.
        listing = query.search is None and query.state in (None, "synced", "changed")
        if listing:
            rows = self._rows("console_customers_scan", query.params(), switch=(
                "all", query.state is None, "synced", query.state == "synced", "changed", query.state == "changed"))
        elif query.counted():
            # the trigram indexes when the operator built them all, else the narrow search rows
            present = self._rows("search_indexes_present", {"names": list(search_indexes.NAMES)})
            indexed = sum(1 for index in present if index["valid"]) == len(search_indexes.NAMES)
            rows = self._rows("console_customers_search", query.params(), no_bitmaps=query.short(),
                              switch=("search_rows", not indexed, "synced", query.state == "synced"))
        else:
            rows = self._rows("console_customers_page", query.params(), switch=("state", query.state is not None))
        total = int(rows[0]["total"]) if rows else 0
        return [{k: v for k, v in row.items() if k != "total"} for row in rows if row["id"] is not None], total

    def customer(self, customer_id: int) -> dict[str, Any] | None:
        rows = self._rows("console_customer", {"id": customer_id})
        return rows[0] if rows else None

    def history(self, customer_id: int, limit: int = 200) -> list[dict[str, Any]]:
        return self._rows("console_customer_history", {"id": customer_id, "limit": limit})

    # -- runs -----------------------------------------------------------------------------------
    def runs(self, days: int = 28, limit: int = 500) -> list[dict[str, Any]]:
        return self._rows("console_runs", {"days": days, "limit": limit})

    def retry_queue_series(self, days: int = 28, limit: int = 500) -> list[dict[str, Any]]:
        return self._rows("console_retry_queue_series", {"days": days, "limit": limit})

    def inbox(self, days: int = 28, refused: int = 5) -> dict[str, Any] | None:
        """SUMIT's triggers: counts, and the latest refused ones; None before crm_inbox exists."""
        if not self._value("console_inbox_exists"):
            return None
        summary = self._rows("console_inbox", {"days": days})[0]
        return {**summary, "refused": self._rows("console_inbox_refused", {"limit": refused})}

    def run(self, dag_id: str, dag_run_id: str) -> dict[str, Any] | None:
        rows = self._rows("console_run", {"dag_id": dag_id, "dag_run_id": dag_run_id})
        return rows[0] if rows else None

    def run_changes(self, dag_id: str, dag_run_id: str, limit: int = 500) -> list[dict[str, Any]]:
        return self._rows("console_run_changes", {"dag_id": dag_id, "dag_run_id": dag_run_id, "limit": limit})

    def run_errors(self, dag_id: str, dag_run_id: str, limit: int = 500) -> list[dict[str, Any]]:
        return self._rows("console_run_errors", {"dag_id": dag_id, "dag_run_id": dag_run_id, "limit": limit})

    # -- the retry queue ------------------------------------------------------------------------
    def errors(self, statuses: tuple[str, ...], page: int = 1, page_size: int = PAGE_SIZE) -> list[dict[str, Any]]:
        return self._rows("console_errors", {"statuses": list(statuses), "limit": page_size,
                                             "offset": (page - 1) * page_size})

    def error_counts(self) -> dict[str, int]:
        return {row["status"]: int(row["count"]) for row in self._rows("console_errors_count")}

    def ignore_errors(self, ids: list[int]) -> list[int]:
        """Mark these records ignored (no run retries them); returns the ids changed. Commits."""
        return [row["id"] for row in self._rows("console_ignore_errors", {"ids": ids}, write=True)]

    # -- conflicts and mass changes -------------------------------------------------------------
    def conflicts(self, page: int = 1, page_size: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], int]:
        rows = self._rows("console_conflicts", {"limit": page_size, "offset": (page - 1) * page_size})
        return rows, int(self._value("console_conflicts_count"))

    def matches(self, page: int = 1, page_size: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], int]:
        """Records waiting for a person's match decision, each with its candidates."""
        rows = self._rows("console_matches", {"limit": page_size, "offset": (page - 1) * page_size})
        return rows, int(self._value("console_matches_count"))

    def plans(self) -> list[dict[str, Any]]:
        return self._rows("console_plans")
