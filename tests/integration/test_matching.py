"""Adopting two populated systems: customers both sides hold are linked, never duplicated;
ambiguous groups wait for a person; a person's decisions (crm_link_customers). Through Airflow,
PostgreSQL and the SUMIT sandbox, under both API profiles."""

from __future__ import annotations

import pytest

from crmsync.db import match_statements

from conftest import ensure_schema, insert_local, push_requests, rows

pytestmark = pytest.mark.usefixtures("env")

SYNC, PULL, LINK = "crm_bidirectional_sync", "crm_pull_customers", "crm_link_customers"
CREATE_PATHS = ("/accounting/customers/create/",)


def local(pg, local_id):
    return dict(zip(("sumit_customer_id", "name", "email", "phone", "tax_id", "city"),
                    rows(pg, "SELECT sumit_customer_id, name, email, phone, tax_id, city FROM sumit_customers"
                             " WHERE id = %s", local_id)[0]))


def crm(sandbox):
    return {str(c["CustomerID"]): c for c in sandbox.control.customers()}


def last_run(pg):
    names = ("operation", "status", "created", "updated", "pushed", "linked", "held", "conflicts", "changed", "message")
    return dict(zip(names, rows(pg, f"SELECT {', '.join(names)} FROM crm_sync_runs ORDER BY id DESC LIMIT 1")[0]))


def creates(sandbox, profile):
    """Customers the push asked SUMIT to create (the guide's update call creates when it has no id)."""
    sent = push_requests(sandbox, profile)
    if profile == "rest":
        return [r for r in sent if r["path"] in CREATE_PATHS]
    return [r for r in sent if not (r["body"] or {}).get("Customer", {}).get("CustomerID")]


def waiting(pg):
    return rows(pg, "SELECT side, customer_id, sumit_customer_id, match_key, match_value, jsonb_array_length(candidates)"
                    " FROM crm_sync_matches WHERE status = 'waiting' ORDER BY side, customer_id, sumit_customer_id")


def test_a_first_sync_links_the_customers_both_sides_hold_and_a_second_is_quiet(pg, sandbox, run_dag, profile):
    ids = sandbox.control.add_customers([
        {"Name": "Dana Levi", "Email": "Dana@Example.com ", "Phone": "03-5551234", "City": "Haifa"},
        {"Name": "Beta Ltd", "TaxID": "51-234567-8", "City": "Eilat"},
        {"Name": "Only In SUMIT", "Email": "crm-only@example.com"},
        {"Name": "Same Name"},  # a name alone never links
    ])
    ensure_schema(pg)
    dana = insert_local(pg, "Dana Levi", email=" dana@example.COM")  # e-mail in another case, with spaces
    beta = insert_local(pg, "Beta Ltd", tax_id="512345678", email="office@beta.example")  # tax id without dashes
    own = insert_local(pg, "Only Here", email="local-only@example.com")
    same = insert_local(pg, "Same Name")

    assert run_dag(SYNC) == "success"
    assert local(pg, dana)["sumit_customer_id"] == str(ids[0])
    assert local(pg, dana)["phone"] == "03-5551234" and local(pg, dana)["city"] == "Haifa"  # blanks filled here
    assert local(pg, beta)["sumit_customer_id"] == str(ids[1])
    assert local(pg, beta)["city"] == "Eilat"
    assert crm(sandbox)[str(ids[1])]["Email"] == "office@beta.example"  # ... and there, as an update
    assert rows(pg, "SELECT count(*) FROM sumit_customers")[0][0] == 6  # 4 local + 2 new from SUMIT, no twin
    assert len(sandbox.control.customers()) == 6  # 4 in SUMIT + the 2 local-only ones created
    assert len(creates(sandbox, profile)) == 2
    created = {local(pg, i)["sumit_customer_id"] for i in (own, same)}
    assert None not in created and not created & {str(i) for i in ids}  # "Same Name" was created, not linked
    run = last_run(pg)
    assert (run["linked"], run["held"]) == (2, 0)
    assert "Linked: 2" in run["message"] and "Held for a person" not in run["message"]
    journal = rows(pg, "SELECT customer_id, before->'sumit_customer_id', after->>'sumit_customer_id' FROM crm_sync_changes"
                       " WHERE direction = 'link' ORDER BY customer_id")
    assert journal == [(dana, None, str(ids[0])), (beta, None, str(ids[1]))]

    table = rows(pg, "SELECT id, sumit_customer_id, name, email, phone, tax_id, city FROM sumit_customers ORDER BY id")
    sent = len(push_requests(sandbox, profile))
    assert run_dag(SYNC) == "success"
    assert rows(pg, "SELECT id, sumit_customer_id, name, email, phone, tax_id, city FROM sumit_customers"
                    " ORDER BY id") == table
    assert len(push_requests(sandbox, profile)) == sent  # no create, no update
    run = last_run(pg)
    assert (run["created"], run["updated"], run["pushed"], run["linked"], run["changed"]) == (0, 0, 0, 0, 0)


def test_the_pairs_are_read_and_linked_a_chunk_at_a_time_each_once(pg, sandbox, run_dag, monkeypatch):
    monkeypatch.setattr(match_statements, "LINK_CHUNK", 2)  # five pairs: three chunks, the last one short
    ids = sandbox.control.add_customers([{"Name": f"Chunk {n}", "Email": f"chunk{n}@example.com"} for n in range(5)])
    ensure_schema(pg)
    pairs = []
    for n in range(5):
        insert_local(pg, f"Other {n}", email=f"other{n}@example.com")  # between the pairs' ids: never linked
        pairs.append(insert_local(pg, f"Chunk {n}", email=f"CHUNK{n}@example.com"))

    assert run_dag(PULL) == "success"
    assert [local(pg, i)["sumit_customer_id"] for i in pairs] == [str(i) for i in ids]
    assert last_run(pg)["linked"] == 5
    assert rows(pg, "SELECT customer_id FROM crm_sync_changes WHERE direction = 'link' ORDER BY 1") == [(i,) for i in pairs]
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE sumit_customer_id IS NULL")[0][0] == 5  # the others


def test_ambiguous_groups_are_held_on_either_side_and_cross_neither_way(pg, sandbox, run_dag, profile):
    sandbox.control.add_customers([
        {"Name": "Twin One", "Email": "shared@example.com"},
        {"Name": "Twin Two", "Email": "SHARED@example.com"},
        {"Name": "Gamma", "TaxID": "777"},
    ])
    ensure_schema(pg)
    one = insert_local(pg, "Shared Inbox", email="shared@example.com")
    g1 = insert_local(pg, "Gamma North", tax_id="7-7-7")
    g2 = insert_local(pg, "Gamma South", tax_id="777")

    assert run_dag(SYNC) == "success"
    assert rows(pg, "SELECT count(*) FROM sumit_customers")[0][0] == 3  # no CRM customer inserted
    assert len(sandbox.control.customers()) == 3  # no local customer created
    assert creates(sandbox, profile) == []
    assert waiting(pg) == [("crm", None, str(c["CustomerID"]), key, value, n)
                           for c, key, value, n in zip(sandbox.control.customers(),
                                                        ("email", "email", "tax_id"),
                                                        ("shared@example.com", "shared@example.com", "777"),
                                                        (1, 1, 2))] + [
        ("local", one, None, "email", "shared@example.com", 2),
        ("local", g1, None, "tax_id", "777", 1),
        ("local", g2, None, "tax_id", "777", 1),
    ]
    run = last_run(pg)
    assert run["held"] == 6 and "Held for a person: 6" in run["message"]
    states = dict(rows(pg, "SELECT id, sync_state FROM crm_sync_customer_states"))
    assert states == {one: "awaiting_match", g1: "awaiting_match", g2: "awaiting_match"}

    assert run_dag(SYNC) == "success"  # still ambiguous: still held, nothing crosses
    assert len(waiting(pg)) == 6 and rows(pg, "SELECT count(*) FROM sumit_customers")[0][0] == 3


def test_phone_links_only_when_configured(pg, sandbox, run_dag):
    ids = sandbox.control.add_customers([{"Name": "Phone Person", "Phone": "+972501234567"}])
    ensure_schema(pg)
    mine = insert_local(pg, "Phone Person", phone="050-1234567")
    assert run_dag(PULL, {"dry_run": True}) == "success"  # tax id and e-mail: no link
    assert local(pg, mine)["sumit_customer_id"] is None
    assert run_dag(PULL, {"match_keys": ["tax_id", "email", "phone"]}) == "success"
    assert local(pg, mine)["sumit_customer_id"] == str(ids[0])
    assert rows(pg, "SELECT count(*) FROM sumit_customers")[0][0] == 1


def test_without_the_phone_key_the_same_phone_is_two_customers(pg, sandbox, run_dag):
    sandbox.control.add_customers([{"Name": "Phone Person", "Phone": "+972501234567"}])
    ensure_schema(pg)
    mine = insert_local(pg, "Phone Person", phone="050-1234567")
    assert run_dag(PULL) == "success"
    assert local(pg, mine)["sumit_customer_id"] is None
    assert rows(pg, "SELECT count(*) FROM sumit_customers")[0][0] == 2


@pytest.mark.parametrize("policy, kept", [("crm_wins", "Haifa"), ("local_wins", "Tel Aviv")])
def test_a_field_filled_differently_is_a_conflict_the_policy_decides_and_records(pg, sandbox, run_dag, profile,
                                                                                   policy, kept):
    ids = sandbox.control.add_customers([{"Name": "Kappa", "Email": "k@example.com", "City": "Haifa"}])
    ensure_schema(pg)
    mine = insert_local(pg, "Kappa", email="k@example.com", city="Tel Aviv")
    assert run_dag(SYNC, {"conflict_policy": policy}) == "success"
    assert local(pg, mine)["city"] == kept and crm(sandbox)[str(ids[0])]["City"] == kept  # both sides agree
    assert rows(pg, "SELECT customer_id, winner, policy, local_values->>'city', crm_values->>'city'"
                    " FROM crm_sync_conflicts") == [(mine, policy.split("_")[0], policy, "Tel Aviv", "Haifa")]
    assert last_run(pg)["conflicts"] == 1


def test_a_dry_run_reports_what_it_would_link_and_hold_and_writes_nothing(pg, sandbox, run_dag):
    sandbox.control.add_customers([{"Name": "A", "Email": "a@example.com"}, {"Name": "B1", "TaxID": "9"},
                                   {"Name": "B2", "TaxID": "9"}])
    ensure_schema(pg)
    a = insert_local(pg, "A", email="a@example.com")
    insert_local(pg, "B", tax_id="9")
    before = rows(pg, "SELECT * FROM sumit_customers ORDER BY id")
    assert run_dag(SYNC, {"dry_run": True}) == "success"
    assert rows(pg, "SELECT * FROM sumit_customers ORDER BY id") == before
    assert rows(pg, "SELECT count(*) FROM crm_sync_matches")[0][0] == 0
    assert rows(pg, "SELECT count(*) FROM crm_sync_runs")[0][0] == 0
    assert local(pg, a)["sumit_customer_id"] is None


def test_a_later_unlinked_customer_on_both_sides_is_linked_by_a_later_run(pg, sandbox, run_dag):
    sandbox.control.add_customers([{"Name": "First"}])
    assert run_dag(SYNC) == "success"
    ids = sandbox.control.add_customers([{"Name": "Late Comer", "Email": "late@example.com"}])
    late = insert_local(pg, "Late Comer", email="LATE@example.com")
    assert run_dag(SYNC) == "success"
    assert local(pg, late)["sumit_customer_id"] == str(ids[0])
    assert rows(pg, "SELECT count(*) FROM sumit_customers")[0][0] == 2 and len(sandbox.control.customers()) == 2
    assert last_run(pg)["linked"] == 1


def test_a_person_links_separates_and_unlinks_and_wrong_decisions_write_nothing(pg, sandbox, run_dag, profile):
    twin1, twin2 = sandbox.control.add_customers([{"Name": "Twin One", "Email": "shared@example.com", "City": "Acre"},
                                                  {"Name": "Twin Two", "Email": "shared@example.com"}])
    ensure_schema(pg)
    mine = insert_local(pg, "Shared", email="shared@example.com")
    other = insert_local(pg, "Other", email="other@example.com")
    assert run_dag(PULL) == "success" and len(waiting(pg)) == 3
    held = dict(rows(pg, "SELECT sumit_customer_id, id FROM crm_sync_matches WHERE side = 'crm'"))

    snapshot = rows(pg, "SELECT * FROM sumit_customers ORDER BY id")
    for refused in ({"links": [[mine, "999999"]]},  # a CRM customer nobody held
                    {"links": [[424242, str(twin1)]]},  # no such local customer
                    {"links": [[mine, str(twin1)], [other, str(twin1)]]},  # one CRM customer twice
                    {"separate": [987654]}, {"unlink": [other]}):  # not held; not linked
        assert run_dag(LINK, refused) == "failed", refused
        assert rows(pg, "SELECT * FROM sumit_customers ORDER BY id") == snapshot
    assert len(waiting(pg)) == 3

    assert run_dag(LINK, {"links": [[mine, str(twin1)]], "dry_run": True}) == "success"
    assert local(pg, mine)["sumit_customer_id"] is None
    assert run_dag(LINK, {"links": [[mine, str(twin1)]]}) == "success"
    assert local(pg, mine)["sumit_customer_id"] == str(twin1) and local(pg, mine)["city"] == "Acre"
    assert rows(pg, "SELECT status FROM crm_sync_matches WHERE sumit_customer_id = %s", str(twin1)) == [("linked",)]
    assert last_run(pg)["operation"] == "link" and "Linked: 1" in last_run(pg)["message"]
    assert run_dag(LINK, {"links": [[other, str(twin1)]]}) == "failed"  # linked to someone else already

    assert run_dag(LINK, {"separate": [held[str(twin2)]]}) == "success"
    assert rows(pg, "SELECT status FROM crm_sync_matches WHERE id = %s", held[str(twin2)]) == [("separate",)]
    assert run_dag(PULL) == "success"  # Twin Two crosses as a new record now
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE sumit_customer_id = %s", str(twin2))[0][0] == 1
    assert waiting(pg) == []

    assert run_dag(LINK, {"unlink": [mine]}) == "success"
    assert local(pg, mine)["sumit_customer_id"] is None
    assert rows(pg, "SELECT reason FROM crm_sync_match_exclusions WHERE customer_id = %s AND sumit_customer_id = %s",
                mine, str(twin1)) == [("unlink",)]
    assert run_dag(PULL) == "success"  # never matched again automatically: Twin One comes in as its own row
    assert local(pg, mine)["sumit_customer_id"] is None
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE sumit_customer_id = %s", str(twin1))[0][0] == 1


def test_the_database_and_python_spell_a_key_alike(pg):
    """crmsync_match_value (the set-based matching) and crmsync.core.matching.normalize are twins."""
    from crmsync.core.matching import normalize

    ensure_schema(pg)
    cases = [(key, value) for key in ("tax_id", "email", "phone") for value in (
        "51-234567-8", " 51 234 567\t8 ", "Dana@Example.com ", "\n dana@example.COM", "050-1234567", "+972501234567",
        "00972 50 123 4567", "972-3-5551234", "(03) 555-1234", "", " ", "-", "+", "a b-c", "עברית@דוגמה.co.il",
        "vivid@v.v", "\x0bv-1\x0c", "\u00a0nbsp@x.il\u00a0", "٣٤٥")]
    with pg.connect() as conn:
        database = [conn.execute("SELECT crmsync_match_value(%s, %s)", case).fetchone()[0] for case in cases]
    assert database == [normalize(*case) for case in cases]
