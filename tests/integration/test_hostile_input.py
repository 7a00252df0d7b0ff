"""Hostile input through Airflow, on real PostgreSQL and the SUMIT sandbox: records no sane
CRM would send, params no one should type, connections filled in wrong.

Each bad record is rejected with a reason in crm_sync_errors and counted in the run row;
every good record next to it is stored exactly; nothing is duplicated. Each bad param or
connection stops the run before anything reaches SUMIT or the customers table.
"""

from __future__ import annotations

import json
import os
import random

import pytest

from conftest import (API_KEY, COMPANY_ID, FAST_RETRIES, airflow_cli, data_snapshot, duplicates, lost_since,
                      push_requests, set_sumit_connection)
from test_dags import ensure_schema, insert_local, last_run, rows

LENIENT = {"max_reject_ratio": 1}  # these runs look at each record's outcome, not at the threshold

_random = random.Random(20261125)
# 10,000 characters that do not compress (Hebrew, CJK, emoji): a TOASTed value, not a short one.
LONG_TEXT = "".join(_random.choice(["א", "ב", "ג", "׳", "״", "中", "文", "😀", "🇮🇱"]) + chr(_random.randrange(0x4E00, 0x9FFF))
                    for _ in range(5_000))
assert len(LONG_TEXT) >= 10_000


def as_entity(record: dict) -> dict:
    """A guide-shaped record as the rest profile's listentities sends it: typed property names,
    every value in a list, verbatim otherwise (the sandbox serves raw records unchanged)."""
    typed = {"Name": "Customers_FullName", "Email": "Customers_EmailAddress", "Phone": "Customers_Phone",
             "TaxID": "Customers_CompanyNumber", "Address": "Customers_Address", "City": "Customers_City",
             "ZipCode": "Customers_ZipCode"}
    entity = {"ID": record["CustomerID"], "Folder": "customers"} if "CustomerID" in record else {"Folder": "customers"}
    entity.update({typed.get(key, key): [value] for key, value in record.items() if key != "CustomerID"})
    return entity


def add_raw(sandbox, profile, records):
    sandbox.control.add_raw([as_entity(r) if profile == "rest" and isinstance(r, dict) else r for r in records])


def stored(pg):
    """Every local customer by CRM id: the synced columns and metadata."""
    return {r[0]: r[1:] for r in rows(pg, "SELECT sumit_customer_id, name, email, phone, company_name, tax_id, address,"
                                          " city, state, country, zip_code, metadata FROM sumit_customers")}


def pull_errors(pg):
    return rows(pg, "SELECT sumit_customer_id, record_key, error, record, status, attempts FROM crm_sync_errors"
                    " WHERE phase = 'pull' ORDER BY id")


# -- from the CRM ---------------------------------------------------------------------------------

# Valid records, however odd: each must be stored exactly as listed here after the pull
# (None: NULL). Fields not listed are NULL, country IL.
VALID = {
    "hebrew": ({"CustomerID": "900001", "Name": 'חברת אלפא בע"מ', "CompanyName": "ג׳רבי ושות׳",
                "Address": "\u200fרח׳ הרצל 1, קומה ״ב״", "City": "תל אביב-יפו", "TaxID": "012345678",
                "Phone": "050-1234567"},
               {"name": 'חברת אלפא בע"מ', "company_name": "ג׳רבי ושות׳", "address": "\u200fרח׳ הרצל 1, קומה ״ב״",
                "city": "תל אביב-יפו", "tax_id": "012345678", "phone": "050-1234567"}),
    "emoji": ({"CustomerID": "900002", "Name": "Café 😀 👨\u200d👩\u200d👧", "City": "🇮🇱 Eilat", "Country": "IL"},
              {"name": "Café 😀 👨\u200d👩\u200d👧", "city": "🇮🇱 Eilat"}),
    "long": ({"CustomerID": "900003", "Name": LONG_TEXT, "Address": LONG_TEXT[::-1], "Notes": LONG_TEXT},
             {"name": LONG_TEXT, "address": LONG_TEXT[::-1]}),
    "nul": ({"CustomerID": "900004\x00", "Name": "Nul\x00 Ltd", "City": "Hai\x00fa", "no\x00te": "a\x00b"},
            {"name": "Nul Ltd", "city": "Haifa"}),  # PostgreSQL text cannot hold NUL: it is dropped
    "numbers": ({"CustomerID": 900005, "Name": 12345, "TaxID": 12345678, "ZipCode": 6100001.0, "Email": None,
                 "Phone": "", "State": "   "},
                {"name": "12345", "tax_id": "12345678", "zip_code": "6100001"}),  # numbers kept as their text
    "float_id": ({"CustomerID": 900006.0, "Name": "Float id Ltd"}, {"name": "Float id Ltd"}),
    "collisions": ({"CustomerID": "900007", "Name": "Real Name", "name": "custom name", "id": 5,
                    "metadata": {"nested": True}, "sumit_customer_id": "x", "last_synced_at": "1999-01-01",
                    "crm_missing_since": "2000-01-01"},
                   {"name": "Real Name"}),
    "sql": ({"CustomerID": "900008", "Name": "Robert'); DROP TABLE sumit_customers;--", "City": "' OR 1=1 --"},
            {"name": "Robert'); DROP TABLE sumit_customers;--", "city": "' OR 1=1 --"}),
    "half_emoji": ({"CustomerID": "900009", "Name": "Cut emoji \ud83d", "City": "\udc00Acre"},
                   {"name": "Cut emoji \ufffd", "city": "\ufffdAcre"}),  # no UTF-8 form: U+FFFD, as decoders do
    "duplicate": ({"CustomerID": "900010", "Name": "Dup New"}, {"name": "Dup New"}),
}
# The earlier copy of "duplicate", the same id as a JSON number: dropped, last copy wins.
DUPLICATE_EARLIER = {"CustomerID": 900010, "Name": "Dup Old"}
# Invalid records: each rejected, with these words in its reason and this key in crm_sync_errors.
INVALID = [
    ({"CustomerID": "910001", "Name": {"first": "A"}}, "Name holds a dict", "910001"),
    ({"CustomerID": "910002", "Name": "List Email", "Email": ["a@x.il", "b@x.il"]}, "holds a list", "910002"),
    ({"CustomerID": "910003", "Name": None, "Email": "nameless@x.il"}, "no Name", "910003"),
    ({"CustomerID": True, "Name": "Boolean id"}, "CustomerID holds a boolean", "True"),
    ({"CustomerID": 1.5, "Name": "Fractional id"}, "not a whole number", "1.5"),
    ({"CustomerID": {"id": 1}, "Name": "Object id"}, "CustomerID holds a dict", "{'id': 1}"),
    ({"CustomerID": LONG_TEXT[:10_000], "Name": "Ten thousand character id"}, "10000 characters long", None),
    ({"CustomerID": "910008\x00", "Name": None}, "no Name", "910008"),  # a NUL in a rejected record's id
    ("just a string", "record is a str, not an object", None),
    (None, "record is a NoneType, not an object", None),
]


def crm_id(record: dict) -> str:
    """The CRM id a valid record is stored under: a number's digits, a string without its NULs."""
    customer_id = record["CustomerID"]
    return customer_id.replace("\x00", "") if isinstance(customer_id, str) else str(int(customer_id))


def test_hostile_crm_records_are_rejected_one_by_one_and_the_good_ones_kept_exactly(pg, sandbox, run_dag, env,
                                                                                    profile, reliability):
    records = [DUPLICATE_EARLIER] + [record for record, _ in VALID.values()] + [r for r, _, _ in INVALID]
    add_raw(sandbox, profile, records)  # verbatim: the sandbox would normalise what it stores itself

    assert run_dag("crm_pull_customers", LENIENT) == "success"
    run = last_run(pg)
    skipped = len(INVALID) + 1  # the rejected records and the dropped duplicate copy
    assert run[:7] == ("pull", "warning", len(records), len(VALID), 0, 0, skipped)
    assert "Name holds a dict, expected text" in run[10]  # the first reasons, in the run row

    local = stored(pg)
    count, distinct = rows(pg, "SELECT count(*), count(DISTINCT sumit_customer_id) FROM sumit_customers")[0]
    valid_ids = {crm_id(record) for record, _ in VALID.values()}
    # Duplicates by content (sumit_customer_id is uniquely indexed: counting it could only ever say 0):
    # a record stored twice (once unlinked, say), plus both copies of the duplicate id kept.
    copies = rows(pg, "SELECT count(*) FROM sumit_customers WHERE name IN (%s, %s)", DUPLICATE_EARLIER["Name"],
                  VALID["duplicate"][0]["Name"])[0][0]
    duplicated = duplicates(pg, sandbox) + max(0, copies - 1)
    reliability("hostile CRM records (duplicate/numeric/long ids, null and wrong types, 10,000 characters, NUL, "
                "emoji, half emoji, RTL quotes, custom fields named like columns)", cases=len(records),
                outcome="good ones stored exactly; each bad one rejected with its reason in crm_sync_errors",
                lost=len(valid_ids - set(local)), duplicated=duplicated)
    assert duplicated == 0
    assert (count, distinct) == (len(VALID),) * 2
    for key, (record, expected) in VALID.items():
        columns = dict(zip(("name", "email", "phone", "company_name", "tax_id", "address", "city", "state",
                            "country", "zip_code"), local[crm_id(record)][:10]))
        assert columns == {**dict.fromkeys(columns), "country": "IL", **expected}, key
    metadata = local["900007"][10]
    assert {k: metadata[k] for k in ("name", "id", "metadata", "sumit_customer_id")} == {
        "name": "custom name", "id": 5, "metadata": {"nested": True}, "sumit_customer_id": "x"}
    # The CRM's fields named like crmsync's bookkeeping are kept beside it, not mistaken for it.
    assert metadata["crm:last_synced_at"] == "1999-01-01" and metadata["crm:crm_missing_since"] == "2000-01-01"
    assert metadata["last_synced_at"] != "1999-01-01" and "crm_missing_since" not in metadata
    assert local["900003"][10]["Notes"] == LONG_TEXT and local["900004"][10]["note"] == "ab"

    errors = pull_errors(pg)
    assert len(errors) == skipped and all(e[4] == "pending" and e[5] == 1 for e in errors)
    for record, words, key in INVALID:
        [error] = [e for e in errors if words in e[2] and e[0] == key]
        # keyed by its CRM id; a record without a usable one, by its content
        assert error[1] == key if key else error[1].startswith("content:")
        assert isinstance(error[3], dict) and len(json.dumps(error[3])) < 4000  # a short excerpt, never the record
    assert [e[0] for e in errors if "more than once" in e[2]] == ["900010"]

    # The next sync: every good record compares unchanged (the database's fingerprints agree on
    # Hebrew, emoji and 10,000 characters), nothing is pushed back, each bad one counts a second attempt.
    assert run_dag("crm_bidirectional_sync", LENIENT) == "success"
    run = last_run(pg)
    assert run[2:9] == (len(records), 0, 0, len(VALID), skipped, 0, 0)
    assert stored(pg) == local
    assert push_requests(sandbox, profile) == []
    assert [(e[1], e[5]) for e in pull_errors(pg)] == [(e[1], 2) for e in errors]
    with pg.connect() as conn:
        for table in ("sumit_customers", "crm_sync_runs", "crm_sync_errors"):
            assert API_KEY not in conn.execute(f"SELECT coalesce(json_agg(t)::text, '') FROM {table} t").fetchone()[0]


def test_a_customer_listed_twice_across_pages_is_stored_once_with_the_last_copy(pg, sandbox, run_dag, env, profile):
    sandbox.control.add_customers([{"Name": f"C{i}"} for i in range(55)])  # page_size 50: page 2 holds the copy
    first = sandbox.control.customers()[0]
    add_raw(sandbox, profile, [{**first, "Name": "Listed again", "CustomerID": int(first["CustomerID"])}])
    assert run_dag("crm_pull_customers") == "success"
    assert last_run(pg)[2:7] == (56, 55, 1, 0, 0)
    assert rows(pg, "SELECT count(*), count(DISTINCT sumit_customer_id) FROM sumit_customers")[0] == (55, 55)
    assert rows(pg, "SELECT name FROM sumit_customers WHERE sumit_customer_id = %s", str(first["CustomerID"])) == [
        ("Listed again",)]


# -- from operators: run params -------------------------------------------------------------------


def seed_one_local(pg) -> int:
    ensure_schema(pg)
    return insert_local(pg, "Intact Ltd", email="intact@example.com")


def table_snapshot(pg):
    return rows(pg, "SELECT id, name, email, sumit_customer_id, updated_at FROM sumit_customers ORDER BY id"), \
        rows(pg, "SELECT count(*) FROM crm_sync_runs")[0][0]


@pytest.mark.parametrize("dag_id, conf, param", [
    ("crm_bidirectional_sync", {"customer_ids": ["1; DROP TABLE sumit_customers"]}, "customer_ids"),
    ("crm_bidirectional_sync", {"customer_ids": [2**63]}, "customer_ids"),  # beyond bigint: no such local id
    ("crm_bidirectional_sync", {"customer_ids": [1, None]}, "customer_ids"),
    ("crm_pull_customers", {"conflict_policy": "crm_wins'; DROP TABLE sumit_customers; --"}, "conflict_policy"),
    ("crm_pull_customers", {"max_record_attempts": "5"}, "max_record_attempts"),
    ("crm_pull_customers", {"max_record_attempts": -1}, "max_record_attempts"),
    ("crm_bidirectional_sync", {"max_reject_ratio": -0.5}, "max_reject_ratio"),
    ("crm_bidirectional_sync", {"full_resync": "false"}, "full_resync"),
], ids=["sql-in-ids", "id-beyond-bigint", "null-id", "sql-in-policy", "string-attempts", "negative-attempts",
        "negative-ratio", "string-flag"])
def test_bad_params_are_refused_before_any_api_or_database_work(pg, sandbox, guide_env, dag_id, conf, param,
                                                                 reliability):
    sandbox.control.add_customers([{"Name": "CRM Customer"}])
    seed_one_local(pg)
    before, data_before = table_snapshot(pg), data_snapshot(pg, sandbox)
    result = airflow_cli("dags", "test", dag_id, "-c", json.dumps(conf))
    output = result.stdout + result.stderr
    data_after = data_snapshot(pg, sandbox)
    reliability("bad run params (strings, negatives, nulls, beyond bigint, SQL in strings)",
                outcome="refused by Param validation naming the param; nothing sent or written",
                lost=lost_since(data_before, data_after), duplicated=duplicates(pg, sandbox))
    assert data_after == data_before
    assert result.returncode != 0
    assert param in output and ("Invalid input for param" in output or "ParamValidationError" in output)
    assert API_KEY not in output
    assert sandbox.control.requests() == []
    assert table_snapshot(pg) == before  # the table is there, untouched, and no run row was written


def test_duplicate_ids_push_each_customer_once(pg, sandbox, run_dag, env, profile, reliability):
    ensure_schema(pg)
    a, b = insert_local(pg, "Dup A"), insert_local(pg, "Dup B")
    assert run_dag("crm_push_customers", {"customer_ids": [a, b, a, b, a]}) == "success"
    reliability("duplicate ids in customer_ids", outcome="each customer pushed once",
                lost=2 - len(sandbox.control.customers()), duplicated=duplicates(pg, sandbox))
    assert sorted(c["Name"] for c in sandbox.control.customers()) == ["Dup A", "Dup B"]
    assert len(push_requests(sandbox, profile)) == 2
    assert last_run(pg)[6:9] == (0, 2, 0)


def test_ten_thousand_ids_are_accepted_and_handled_in_full(pg, sandbox, run_dag, guide_env, reliability):
    ensure_schema(pg)
    with pg.connect() as conn:
        conn.execute("INSERT INTO sumit_customers (name) SELECT 'Bulk ' || i FROM generate_series(1, 10000) i")
    ids = [r[0] for r in rows(pg, "SELECT id FROM sumit_customers ORDER BY id")]
    assert run_dag("crm_push_customers", {"customer_ids": ids, "dry_run": True}) == "success"
    assert sandbox.control.requests() == []  # a dry run: every one would be pushed, none is
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE sumit_customer_id IS NOT NULL")[0][0] == 0

    # 10,000 ids of which two exist: both are pushed, the 9,998 others are named and recorded, not sent.
    with pg.connect() as conn:
        conn.execute("DELETE FROM sumit_customers WHERE id NOT IN (%s, %s)", (ids[0], ids[-1]))
    assert run_dag("crm_push_customers", {"customer_ids": ids}) == "failed"  # 99.98% unknown > max_reject_ratio
    reliability("10,000 ids, 9,998 unknown", outcome="known ones pushed, unknown ones named and recorded; run red",
                lost=2 - len(sandbox.control.customers()), duplicated=duplicates(pg, sandbox))
    run = last_run(pg)
    assert run[6:9] == (9_998, 2, 0)
    assert f"no local customer with id {ids[1]}, {ids[2]}" in run[10] and "9998 of 10000 records" in run[10]
    assert len(push_requests(sandbox, "guide")) == 2
    assert rows(pg, "SELECT status, count(*) FROM crm_sync_errors GROUP BY status") == [("ignored", 9_998)]


def test_unknown_conf_keys_refuse_the_run_naming_them(pg, sandbox, run_dag, guide_env, reliability):
    """Airflow keeps unknown conf keys (conf is free-form): a typo such as "dryrun" would start a
    real run. The first task refuses it, naming the keys, before any API or database work."""
    local = seed_one_local(pg)
    before, data_before = table_snapshot(pg), data_snapshot(pg, sandbox)
    conf = {"customer_ids": [local], "dryrun": True, "note": "1; DROP TABLE sumit_customers"}
    assert run_dag("crm_push_customers", conf) == "failed"
    data_after = data_snapshot(pg, sandbox)
    reliability("unknown conf keys (typos, SQL in extra keys)", outcome="refused naming the keys; nothing sent or written",
                lost=lost_since(data_before, data_after), duplicated=duplicates(pg, sandbox))
    assert data_after == data_before
    assert sandbox.control.requests() == []
    assert table_snapshot(pg)[0] == before[0]  # the customers; the run row below is the outcome
    status, message = rows(pg, "SELECT status, message FROM crm_sync_runs ORDER BY id DESC LIMIT 1")[0]
    assert status == "failed" and "does not take: 'dryrun', 'note'" in message


# -- from operators: the sumit_default connection ---------------------------------------------------


@pytest.mark.parametrize("dag_id, connection, words", [
    ("crm_push_customers", {"password": None}, "has no password"),
    ("crm_pull_customers", {"host": "not a url"}, "host 'not a url' is not an http(s) URL"),
    ("crm_push_customers", {"host": "http://[::1"}, "host 'http://[::1' is not an http(s) URL"),
    ("crm_push_customers", {"host": "http://admin:s3cret@{hostport}"}, "host must not contain a user name or password"),
    ("crm_pull_customers", {"login": "acme"}, "login must be your numeric SUMIT CompanyID, got 'acme'"),
    ("crm_push_customers", {"login": "²"}, "login must be your numeric SUMIT CompanyID"),
    ("crm_pull_customers", {"login": "9" * 5000}, "login must be your numeric SUMIT CompanyID, got '999"),
    ("crm_pull_customers", {"extra": {"api_profile": "rest", "customers_folder": ""}},
     "the rest profile needs extra.customers_folder"),
], ids=["no-password", "not-a-url", "unclosed-ipv6-bracket", "password-in-url", "company-id-word",
        "company-id-superscript", "company-id-5000-digits", "rest-without-folder"])
def test_a_bad_connection_fails_the_run_naming_the_field_and_sends_nothing(pg, sandbox, run_dag, guide_env, dag_id,
                                                                          connection, words, reliability):
    local = seed_one_local(pg)
    sandbox.control.add_customers([{"Name": "CRM Customer"}])
    use_connection(sandbox, connection)
    try:
        assert run_dag(dag_id, {"customer_ids": [local]} if dag_id == "crm_push_customers" else {}) == "failed"
    finally:
        set_sumit_connection(sandbox.url)
    run = last_run(pg)
    reliability("bad sumit_default connection (no password, bad URL, non-numeric CompanyID, no folder)",
                outcome="failed naming the field; nothing sent",
                lost=1 - rows(pg, "SELECT count(*) FROM sumit_customers")[0][0], duplicated=duplicates(pg, sandbox))
    assert run[1] == "failed" and words in run[10] and "'sumit_default'" in run[10]
    assert API_KEY not in run[10] and "s3cret" not in run[10]
    assert sandbox.control.requests() == []
    assert rows(pg, "SELECT sumit_customer_id FROM sumit_customers WHERE id = %s", local) == [(None,)]
    assert rows(pg, "SELECT count(*) FROM sumit_customers")[0][0] == 1


def use_connection(sandbox, changes):
    """Point sumit_default at the sandbox with ``changes`` to its fields."""
    conn = {"conn_type": "sumit", "host": sandbox.url, "login": str(COMPANY_ID), "password": API_KEY,
            "extra": {**FAST_RETRIES, "api_profile": "guide"}, **changes}
    conn["host"] = conn["host"].format(hostport=sandbox.url.split("://", 1)[1])
    os.environ["AIRFLOW_CONN_SUMIT_DEFAULT"] = json.dumps(conn)


def test_a_bidirectional_run_whose_pull_fails_names_the_cause_in_its_run_row(pg, sandbox, run_dag, guide_env):
    use_connection(sandbox, {"password": None})
    try:
        assert run_dag("crm_bidirectional_sync") == "failed"
    finally:
        set_sumit_connection(sandbox.url)
    assert "has no password" in last_run(pg)[10]
