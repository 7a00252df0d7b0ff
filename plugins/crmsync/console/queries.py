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
# A search counts its matches up to this many, with or without a state filter; past it the page
# says "more than 1,000" (counting every customer a common word matches is what made such searches
# slow). A state filter alone counts every customer in it.
SEARCH_COUNT_LIMIT = 1000
# A search first reads this many search rows in id order (console_customers_search_probe.sql); when
# at least SEARCH_STREAM_HITS of them hold it (one in 500), it reads on in id order and stops after
# the page and the count's limit, which it reaches before half a million rows. A rarer search
# reads every search row at once (in parallel), or asks the trigram indexes.
SEARCH_PROBE_ROWS = 10_000
SEARCH_STREAM_HITS = 20
# Listed with no search by console_customers_scan.sql, from sets of ids (no customer's state computed
# but the page's): every customer, and the states whose customers can be most of the table.
SCANNED_STATES = (None, "synced", "changed", "missing", "never_synced")
# The states only a linked customer can be in (a cheap test before a customer's state is computed).
LINKED_STATES = ("synced", "changed")
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

    def indexable(self) -> bool:
        """Whether a trigram index can find this search's customers without reading long lists:
        not for fewer than three characters (of digits, for a number), which have no trigram,
        nor for an e-mail with fewer than three before its "@", whose other trigrams are its
        domain's, shared by most customers."""
        kind = self.kind()
        search = self.search or ""
        if kind is None:
            return False
        if kind == "email":
            return len(search.split("@", 1)[0]) >= 3
        return len(self._digits() if kind == "number" else search) >= 3

    def _digits(self) -> str:
        """The search's digits (a number's: its phone, id or CRM id)."""
        return "".join(ch for ch in self.search or "" if ch.isdigit())

    def counted(self) -> bool:
        """Whether the total is counted only up to SEARCH_COUNT_LIMIT: any search (a common word
        matches as many customers as the table holds, or a state holds); a state alone is
        counted whole."""
        return self.search is not None

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
            email_key = f"%{_like_escaped(local)}@%" if kind == "email" else pattern
        return {"search": self.search, "kind": kind, "pattern": pattern, "email_key": email_key,
                "digits": f"%{digits}%" if digits else None, "digits_only": digits or None,
                "search_id": search_id, "state": self.state,
                "limit": self.page_size, "offset": (self.page - 1) * self.page_size,
                "count_limit": SEARCH_COUNT_LIMIT + 1 if self.counted() else None,
                "other_states": [s for s in STATE_KEYS if s != self.state]}


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ConsoleQueries:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def _rows(self, name: str, params: dict[str, Any] | None = None, *, write: bool = False) -> list[dict[str, Any]]:
        """Statement ``name`` (a file in include/sql) in a transaction of its own."""
        return self._run(sql.load(name), params, write=write)

    def _run(self, statement: str, params: dict[str, Any] | None = None, *, write: bool = False) -> list[dict[str, Any]]:
        """One statement in a transaction of its own (a page never holds a lock while it renders)."""
        try:
            with self.conn.cursor() as cur:
                # Planned with the values each time (never a generic prepared plan): "no search" and
                # "any state" then fold away, and the sync state is computed only for the page's rows.
                # No JIT compiling: it costs a second before a page over a big table answers
                # (PostgreSQL compiles any statement its planner costs high), and saves nothing here.
                cur.execute("SET LOCAL jit = off")
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
        rows = self._run(*self.customers_statement(query))
        total = int(rows[0]["total"]) if rows else 0
        return [{k: v for k, v in row.items() if k != "total"} for row in rows if row["id"] is not None], total

    def customers_statement(self, query: CustomerQuery) -> tuple[str, dict[str, Any]]:
        """The statement that reads the Customers page for ``query``, and its parameters.

        No search, and every customer or one of SCANNED_STATES: counts of sets of ids and the page
        in id order through an index. Else the candidates (see console_customers_page.sql):
        a state's own customers; for a search with no state or the synced one, the search rows
        in id order when the first ones hold it often, else the trigram indexes when the operator
        built them and they can narrow it (CustomerQuery.indexable), else every search row that
        holds it, most of them read from the packed search rows."""
        params = query.params()
        if query.search is None and query.state in SCANNED_STATES:
            return sql.load_switched(
                "console_customers_scan", "all", query.state is None, "linked", query.state in LINKED_STATES,
                *(part for state in SCANNED_STATES[1:] for part in (state, query.state == state))), params
        source, stream = "state_sets", False
        if query.search is not None and query.state in (None, "synced"):
            hits = self._value("console_customers_search_probe", {**params, "probe_rows": SEARCH_PROBE_ROWS})
            stream = int(hits) >= SEARCH_STREAM_HITS
            source = ("search_rows" if stream else "trigram" if query.indexable() and self._search_indexed()
                      else "search_packs")
        return sql.load_switched(
            "console_customers_page", "state_sets", source == "state_sets", "search_rows", source == "search_rows",
            "search_packs", source == "search_packs",
            "trigram", source == "trigram", "stream", stream, "linked", query.state in LINKED_STATES,
            "state", query.state is not None), params

    def _search_indexed(self) -> bool:
        """Whether the operator built every trigram index of `crmsync search-index`."""
        present = self._rows("search_indexes_present", {"names": list(search_indexes.NAMES)})
        return sum(1 for index in present if index["valid"]) == len(search_indexes.NAMES)

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
