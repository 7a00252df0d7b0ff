"""The naive reference of `make bench` (scripts/bench.py): the way the guide's original service
works, row by row. The whole list fetched into memory; then per row a SELECT, a comparison, and
an INSERT or an UPDATE of a new or changed row only (each statement committed: autocommit);
pushes one at a time. A real row-by-row service writes nothing for a row that did not change,
so neither does this one."""

from __future__ import annotations

import json
from typing import Any

COMPANY_ID = 1000

_NAIVE_FIELDS = ("Name", "Email", "Phone", "CompanyName", "TaxID", "Address", "City", "State", "Country", "ZipCode")
_NAIVE_COLUMNS = ("name", "email", "phone", "company_name", "tax_id", "address", "city", "state", "country", "zip_code")


def _naive_session() -> Any:
    import requests

    session = requests.Session()
    session.headers["Content-Type"] = "application/json"
    return session


def naive_credentials(spec: dict[str, Any]) -> dict[str, Any]:
    return {"CompanyID": COMPANY_ID, "APIKey": spec["api_key"]}


def naive_pull(conn: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The whole list into memory, then per row: SELECT it, compare, and INSERT, UPDATE what
    changed or write nothing; each write committed."""
    session = _naive_session()
    customers, start = [], 0
    while True:  # the sandbox caps a page at 1,000; the naive service keeps everything anyway
        answer = session.post(spec["url"] + "/website/customers/getlist/", json={
            "Credentials": naive_credentials(spec), "Paging": {"StartIndex": start, "PageSize": 1000}}).json()
        customers += answer["Customers"]
        start += len(answer["Customers"])
        if not answer.get("HasNextPage"):
            break
    trips = 0
    for record in customers:
        values = [record.get(k) or None for k in _NAIVE_FIELDS]
        values[8] = values[8] or "IL"
        custom = json.dumps({k: v for k, v in record.items() if k not in _NAIVE_FIELDS and k != "CustomerID"},
                            ensure_ascii=False)
        row = conn.execute(f"SELECT id, updated_at > coalesce(synced_at, '-infinity'), {', '.join(_NAIVE_COLUMNS)},"
                           " metadata FROM sumit_customers WHERE sumit_customer_id = %s",
                           [str(record["CustomerID"])]).fetchone()
        trips += 1
        if row is None:
            conn.execute(f"INSERT INTO sumit_customers (sumit_customer_id, {', '.join(_NAIVE_COLUMNS)}, metadata,"
                         " synced_at) VALUES (%s, " + "%s, " * len(_NAIVE_COLUMNS) + "%s::jsonb, clock_timestamp())",
                         [str(record["CustomerID"]), *values, custom])
            trips += 1
        elif not row[1]:  # keep a local edit (the naive service's two-way rule)
            stored_custom = {k: row[12].get(k) for k in json.loads(custom)}
            sent = [None if v is None else str(v) for v in values]
            if list(row[2:12]) != sent or stored_custom != json.loads(custom):  # write only what changed
                conn.execute(f"UPDATE sumit_customers SET ({', '.join(_NAIVE_COLUMNS)}) = "
                             f"({', '.join(['%s'] * 10)}), metadata = metadata || %s::jsonb WHERE id = %s",
                             [*values, custom, row[0]])
                # after the trigger stamped updated_at, or the row would look changed locally
                conn.execute("UPDATE sumit_customers SET synced_at = clock_timestamp() WHERE id = %s", [row[0]])
                trips += 2
    return {"round_trips": trips, "fetched": len(customers), "pushed": 0, "failed": 0}


def naive_push(conn: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Every changed row (or the given ids) read at once, then pushed one at a time."""
    session = _naive_session()
    if spec.get("ids") is not None:
        rows = conn.execute(f"SELECT id, sumit_customer_id, {', '.join(_NAIVE_COLUMNS)} FROM sumit_customers"
                            " WHERE id = ANY(%s) ORDER BY id", [spec["ids"]]).fetchall()
    else:
        rows = conn.execute(f"SELECT id, sumit_customer_id, {', '.join(_NAIVE_COLUMNS)} FROM sumit_customers"
                            " WHERE updated_at > coalesce(synced_at, '-infinity') ORDER BY id").fetchall()
    trips, pushed = 1, 0
    for row in rows:
        customer = {"CustomerID": row[1], **{k: v or "" for k, v in zip(_NAIVE_FIELDS, row[2:])}}
        answer = session.post(spec["url"] + "/website/customers/update/",
                              json={"Credentials": naive_credentials(spec), "Customer": customer}).json()
        sumit_id = (answer.get("Data") or {}).get("CustomerID") or answer.get("CustomerID") or row[1]
        conn.execute("UPDATE sumit_customers SET sumit_customer_id = %s, synced_at = clock_timestamp() WHERE id = %s",
                     [str(sumit_id), row[0]])
        trips += 1
        pushed += 1
    return {"round_trips": trips, "pushed": pushed, "failed": 0, "fetched": 0}


def naive_bidirectional(conn: Any, spec: dict[str, Any]) -> dict[str, Any]:
    pulled = naive_pull(conn, spec)
    pushed = naive_push(conn, {**spec, "ids": None})
    return {"round_trips": pulled["round_trips"] + pushed["round_trips"], "fetched": pulled["fetched"],
            "pushed": pushed["pushed"], "failed": 0}


NAIVE = {"pull": naive_pull, "bidirectional": naive_bidirectional, "push": naive_push}
