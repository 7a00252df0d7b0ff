"""A pulled page on its way to the database: prepared (field rules applied, repeated ids
rejected, rows encoded) in read_ahead's thread, or, on a re-pull, handed over as SUMIT sent it
and prepared by the pull itself with only the records that changed since the last pull (their
record hash, crmsync.core.fingerprint.record_hashes, is not the one the table holds).
Changed records of several such pages are merged together (:func:`combined`): a re-pull with
1% changed merges a page's worth at once, not ten records a page."""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from operator import itemgetter
from typing import Any

from crmsync.core.field_rules import FieldRules
from crmsync.core.fingerprint import MAPPING_VERSION
from crmsync.core.merge import dedupe_by_id
from crmsync.core.model import CrmCustomer, RejectedRecord
from crmsync.core.pulled import PulledPage, customer_row, row_customer
from crmsync.db import plans
from crmsync.db.store import CustomerStore, decode_rows, encode_rows
from crmsync.flows.common import CrmClient


class PreparedPage:
    """A page made ready for the database in read_ahead's thread, so that this CPU work (the
    JSON, the field rules) overlaps the database's merge of the page before. Holds only the
    page's rows (crmsync.core.pulled), one per CRM id, as the JSON the database takes: a customer is
    built from them when asked for (the merge asks only for those whose CRM copy changed), so a
    page waiting for its turn takes a third of a megabyte, not two."""

    def __init__(self, number: int, fetched: int, rejected: list[RejectedRecord], rows: bytes,
                 customers: list[CrmCustomer] | None = None, unchanged_ids: Sequence[str] = ()) -> None:
        self.number = number
        self.fetched = fetched  # records the page held, valid or not (the unchanged ones too)
        self.rejected = rejected  # invalid records, and the earlier copies of a repeated id
        self.unique = fetched - len(rejected)  # customers, one per CRM id (the last copy of a repeated one)
        self.rows = rows  # store.encode_rows: what CustomerStore.pull_page takes
        self._customers = customers  # when field rules made them: kept, they carry what the rules did
        # CRM ids of the records the same as at the last pull (the same record hash): not mapped,
        # not in rows, only seen (already noted as such when unchanged_seen, and then dropped once
        # spooled: ``same`` keeps their number)
        self.unchanged_ids = unchanged_ids
        self.same = len(unchanged_ids)
        self.unchanged_seen = False

    @property
    def has_customers(self) -> bool:
        """Whether field rules made its customers (kept: they carry what the rules did)."""
        return self._customers is not None

    @property
    def customers(self) -> list[CrmCustomer]:
        if self._customers is not None:
            return self._customers
        return [row_customer(row) for row in decode_rows(self.rows)]

    def customers_named(self, ids: Container[str]) -> list[CrmCustomer]:
        """The page's customers whose CRM id is in ``ids``, in page order."""
        if self._customers is not None:
            return [c for c in self._customers if c.sumit_id in ids]
        return [row_customer(row) for row in decode_rows(self.rows) if row[0] in ids]


class Skipping:
    """Whether the pull hands pages over unmapped, for :func:`prepared_skipping_known` to map
    only their changed records: yes while the last page had at least half its records unchanged
    (a re-pull, nearly always), else the read-ahead thread maps every record, as for a first pull,
    so that the mapping overlaps the database's work. Set by the pull's thread, read by read_ahead's."""

    def __init__(self) -> None:
        self.on = True

    def judge(self, unchanged: int, fetched: int) -> None:
        """After a page: skip on while at least half its records were unchanged."""
        self.on = unchanged * 2 >= fetched


def record_salt(client: CrmClient, rules: FieldRules) -> str | None:
    """What decides how a record is mapped (crmsync.core.fingerprint.record_hashes); None when
    the client does not say (a test double): no record is hashed, every one is mapped."""
    client_salt = getattr(client, "record_salt", None)
    if not isinstance(client_salt, str):
        return None
    return f"{MAPPING_VERSION}|{client_salt}|{rules.fields!r}|{rules.exclude_metadata!r}"


def prepared_pages(pages: Iterator[PulledPage], rules: FieldRules, spool: plans.ListingSpool | None = None, *,
                   salt: str | None = None, skipping: Skipping | None = None) -> Iterator[PreparedPage | PulledPage]:
    """Pulled pages made ready for :func:`merge_page` (field rules applied, repeated ids
    rejected, rows encoded); kept in ``spool`` too when the pull may be held. With ``salt``
    each record is hashed first (its row carries the hash). While ``skipping`` is on, a page
    of records is handed over as it is: the pull maps only its changed records."""
    try:
        for page in pages:
            if salt is not None:
                page.hash_records(salt)
            if skipping is not None and skipping.on and page.records is not None:
                yield page
                continue
            prepared = [prepare(page, rules)]
            del page  # its rows, as Python objects: not kept while the page waits and is merged
            if spool is not None:
                spool.add(prepared[0].number, prepared[0].fetched, prepared[0].rows, prepared[0].rejected)
            yield prepared.pop()
    finally:
        close = getattr(pages, "close", None)
        if close is not None:  # a generator: let it release its connection now
            close()


def prepared_skipping_known(page: PulledPage, rules: FieldRules, store: CustomerStore, *,
                             note_seen: bool) -> PreparedPage:
    """``page`` prepared without mapping the records the table already holds as they are (the
    same record hash for their CRM id: one statement, pull_unknown_records.sql, which also notes
    them as seen). A page whose ids repeat or are missing is mapped whole (the repeats are
    rejected as usual)."""
    ids = page.ids
    if page.hashes is None or not all(ids) or len(set(ids)) != len(ids):
        return prepare(page, rules)
    changed = store.unknown_records(ids, page.hashes, note_seen=note_seen)  # type: ignore[arg-type]
    if len(changed) == len(ids):
        return prepare(page, rules)
    mapped = set(changed)
    unchanged = [sumit_id for position, sumit_id in enumerate(ids) if position not in mapped]
    prepared = prepare(page.subset(changed), rules, unchanged)  # type: ignore[arg-type]
    prepared.unchanged_seen = True
    return prepared


def prepare(page: PulledPage, rules: FieldRules, unchanged_ids: Sequence[str] = ()) -> PreparedPage:
    customers = None
    if rules.is_default:
        rows, repeated = _dedupe_rows(page)
    else:
        customers, duplicates = dedupe_by_id([rules.pulled(c) for c in page.customers])
        rows, repeated = [customer_row(c) for c in customers], [(c.sumit_id, c.fields.get("name")) for c in duplicates]
    rejected = page.rejected + [
        RejectedRecord(
            reason="CustomerID appears more than once on the same page; the last copy was used",
            sumit_id=sumit_id, excerpt={"CustomerID": sumit_id, "Name": name},
        )
        for sumit_id, name in repeated
    ]
    return PreparedPage(page.number, len(page) + len(page.rejected) + len(unchanged_ids), rejected,
                        encode_rows(rows), customers, unchanged_ids)


def _dedupe_rows(page: PulledPage) -> tuple[list[list[Any]], list[tuple[str, str | None]]]:
    """A page's rows, one per CRM id (the last copy wins), and (id, name) of the copies dropped."""
    rows = page.rows
    if len({row[0] for row in rows}) == len(rows):  # nearly always
        return rows, []
    unique, dropped = dedupe_by_id(rows, key=itemgetter(0))
    return unique, [(row[0], row[1]) for row in dropped]




def combined(pages: Sequence[PreparedPage]) -> PreparedPage:
    """Several pages :func:`prepared_skipping_known` prepared, as one, for one merge (the CRM ids
    of their changed records are distinct: the caller checks); numbered as the last of them."""
    if len(pages) == 1:
        return pages[0]
    rows = b"[" + b",".join(p.rows[1:-1] for p in pages if len(p.rows) > 2) + b"]"
    customers = None
    if any(p.has_customers for p in pages):
        customers = [c for p in pages for c in p.customers]
    page = PreparedPage(pages[-1].number, sum(p.fetched for p in pages), [r for p in pages for r in p.rejected],
                        rows, customers)
    page.same, page.unchanged_seen = sum(p.same for p in pages), True
    return page
