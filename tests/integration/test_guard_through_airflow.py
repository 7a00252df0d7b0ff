"""The mass-change guard through PostgreSQL and the sandbox: a held pull writes nothing, keeps its
plan and listing in PostgreSQL, and another process (a worker) applies exactly that plan; a plan
the table no longer matches is refused. Through Airflow: approved in advance never waits, and a
dry run only says it would. (Waiting for and answering the approval: tests/e2e/test_mass_change.py,
in a live Airflow.)"""

from __future__ import annotations

import logging

import psycopg
import pytest

from crmsync.core.errors import CrmSyncError
from crmsync.core.guard import GuardLimits
from crmsync.db.store import CustomerStore, RunRef
from crmsync.flows import pull
from crmsync.hooks.sumit import SumitHook

pytestmark = pytest.mark.usefixtures("guide_env")

CUSTOMERS = 150
LIMITS = GuardLimits(max_change_ratio=0.2, min_mass_change=100)
LOG = logging.getLogger("test")


def rows(pg, query, *args):
    with pg.connect() as conn:
        return conn.execute(query, args).fetchall()


def table(pg):
    """Every customer row as text, and the journal's size: what a held pull must not change."""
    return (rows(pg, "SELECT md5(string_agg(c::text, '|' ORDER BY id)) FROM sumit_customers c")[0][0],
            rows(pg, "SELECT count(*) FROM crm_sync_history")[0][0])


def pull_once(pg, run_id, **kwargs):
    hook = SumitHook()
    try:
        with CustomerStore(psycopg.connect(pg.dsn), RunRef("crm_pull_customers", run_id)) as store:
            store.ensure_schema()
            return pull.run_pull(hook, store, log=LOG, **kwargs)
    finally:
        hook.close()


def apply_held(pg, run_id):
    with CustomerStore(psycopg.connect(pg.dsn), RunRef("crm_pull_customers", run_id)) as store:
        return pull.apply_held_pull(store, log=LOG)


@pytest.fixture
def pulled(pg, sandbox):
    sandbox.control.add_customers([{"Name": f"Guarded {i}", "Email": f"g{i}@example.co.il"} for i in range(CUSTOMERS)])
    first = pull_once(pg, "first", limits=LIMITS)
    assert (first.held, first.counts.created, first.plan) == (False, CUSTOMERS, None)  # new customers never wait


def test_a_held_pull_writes_nothing_and_another_process_applies_exactly_its_plan(pulled, pg, sandbox):
    sandbox.control.reset([])  # an empty listing
    before = table(pg)
    held = pull_once(pg, "empty-listing", limits=LIMITS)
    assert held.held and held.plan.vanished == CUSTOMERS and "flag 150 of the 150" in held.reasons[0]
    assert table(pg) == before  # nothing flagged, nothing journaled
    status, plan = rows(pg, "SELECT status, plan FROM crm_sync_plans WHERE dag_run_id = 'empty-listing'")[0]
    assert (status, plan["vanished"], plan["existing"]) == ("awaiting_approval", CUSTOMERS, CUSTOMERS)
    assert rows(pg, "SELECT count(*) FROM crm_sync_listing WHERE dag_run_id = 'empty-listing'")[0][0] >= 1

    # The CRM lists them again meanwhile: the approved plan is still the one applied.
    sandbox.control.add_customers([{"Name": "Back later"}])
    requests_before = len(sandbox.control.requests())
    applied = apply_held(pg, "empty-listing")
    assert len(sandbox.control.requests()) == requests_before  # applied from PostgreSQL, not read again
    assert applied.plan.totals() == held.plan.totals()
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE metadata ? 'crm_missing_since'")[0][0] == CUSTOMERS
    assert rows(pg, "SELECT count(*) FROM crm_sync_changes WHERE dag_run_id = 'empty-listing'")[0][0] == CUSTOMERS
    assert rows(pg, "SELECT status FROM crm_sync_plans WHERE dag_run_id = 'empty-listing'")[0][0] == "applied"
    assert rows(pg, "SELECT count(*) FROM crm_sync_listing")[0][0] == 0
    with pytest.raises(Exception, match="no pull plan waiting"):
        apply_held(pg, "empty-listing")  # applied once, never twice


def test_a_plan_the_table_no_longer_matches_is_refused(pulled, pg, sandbox):
    sandbox.control.reset([])
    assert pull_once(pg, "stale-plan", limits=LIMITS).held
    with pg.connect() as conn:  # meanwhile a customer loses its link: the plan would now flag 149
        conn.execute("UPDATE sumit_customers SET sumit_customer_id = NULL WHERE id = (SELECT min(id) FROM sumit_customers)")
    before = table(pg)
    with pytest.raises(CrmSyncError, match="not the plan that was approved"):
        apply_held(pg, "stale-plan")
    assert table(pg) == before
    assert rows(pg, "SELECT status FROM crm_sync_plans WHERE dag_run_id = 'stale-plan'")[0][0] == "awaiting_approval"


def test_blanking_a_column_is_held_a_few_edits_are_not(pulled, pg, sandbox):
    crm = sandbox.control.customers()
    sandbox.control.add_customers([{**c, "Email": ""} for c in crm[:10]])  # ten e-mails blanked: an ordinary day
    assert not pull_once(pg, "ten-blanked", limits=LIMITS).held
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE email IS NULL")[0][0] == 10
    sandbox.control.add_customers([{**c, "Email": ""} for c in crm])  # every e-mail blanked: a broken export
    held = pull_once(pg, "all-blanked", limits=LIMITS)
    assert held.held and any("blank email on 140 customers" in r for r in held.reasons), held.reasons
    [email] = [f for f in held.plan.fields if f.field == "email"]
    assert (email.changed, email.blanked, len(email.examples)) == (140, 140, 3)
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE email IS NULL")[0][0] == 10


def test_approved_in_advance_applies_without_waiting_and_a_dry_run_only_says_it_would(pulled, pg, sandbox, run_dag,
                                                                                      capfd):
    sandbox.control.reset([])
    before = table(pg)
    capfd.readouterr()
    assert run_dag("crm_pull_customers", {"dry_run": True}) == "success"
    assert table(pg) == before
    assert rows(pg, "SELECT count(*) FROM crm_sync_plans")[0][0] == 0
    assert "A real run would wait for approval before writing anything: it would flag 150" in "".join(capfd.readouterr())

    assert run_dag("crm_pull_customers", {"approve_mass_change": True}) == "success"
    assert rows(pg, "SELECT count(*) FROM sumit_customers WHERE metadata ? 'crm_missing_since'")[0][0] == CUSTOMERS
    assert rows(pg, "SELECT vanished, changed, status FROM crm_sync_runs ORDER BY id DESC LIMIT 1")[0] == (
        CUSTOMERS, CUSTOMERS, "success")
    assert rows(pg, "SELECT count(*) FROM crm_sync_plans")[0][0] == 0
