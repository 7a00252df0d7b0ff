"""The console's pure parts: a run's outcome in the guide's words, the Customers page's query
checks, the Runs chart."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from crmsync.console.charts import runs_chart
from crmsync.console.outcome import (PULL_DAG, PUSH_DAG, RESOLVE_DAG, STATE_KEYS, SYNC_DAG, airflow_run_url,
                                     outcome_text)
from crmsync.console.queries import MAX_PAGE_SIZE, CustomerQuery


def row(**counts):
    return {"status": "success", "message": None, **counts}


def test_outcomes_in_the_guides_words():
    assert outcome_text(PUSH_DAG, "success", row(pushed=8, failed=2)) == "Pushed 8 customers, 2 failed"
    assert outcome_text(PUSH_DAG, "success", row(pushed=1, failed=0)) == "Pushed 1 customer, 0 failed"
    assert outcome_text(PULL_DAG, "success", row(fetched=120, created=3, updated=5, vanished=2)) == \
        "Pulled 120 customers: 3 new, 5 updated (2 missing in the CRM)"
    assert outcome_text(SYNC_DAG, "success", row(fetched=1200, created=0, updated=1, pushed=3, failed=0)) == \
        "Pulled 1,200 customers: 0 new, 1 updated; pushed 3 customers, 0 failed"
    failed = outcome_text(PUSH_DAG, "failed", {"status": "failed", "pushed": 0, "failed": 4,
                                               "message": "SUMIT refused the credentials"})
    assert failed == "Failed. Pushed 0 customers, 4 failed (SUMIT refused the credentials)"
    assert outcome_text(RESOLVE_DAG, "success", row(conflicts=2, updated=1, pushed=1, failed=0, skipped=1)) == \
        "Resolved 2 conflicts: 1 rewritten, pushed 1 customer, 0 failed (1 skipped)"
    assert outcome_text("crm_apply_crm_events", "success", row(fetched=3, created=1, updated=1, vanished=1)) == \
        "Applied SUMIT's triggers: read 3 customers, 1 new, 1 updated (1 missing in the CRM)"
    assert outcome_text(SYNC_DAG, "success", row(fetched=7, created=1, linked=2, held=3, pushed=5, failed=0)) == \
        "Pulled 7 customers: 1 new, 0 updated; pushed 5 customers, 0 failed (2 linked, 3 waiting for a match decision)"
    assert outcome_text("crm_link_customers", "success", row(linked=1, changed=1, pushed=1, failed=0)) == \
        "Linked 1 customer, changed 1; pushed 1 customer, 0 failed"
    assert outcome_text(PUSH_DAG, "queued", None) == "Waiting for a worker ..."
    assert outcome_text(PUSH_DAG, "running", None) == "Running ..."
    assert "failed before it could count" in outcome_text(PULL_DAG, "failed", None)


def test_run_links_are_escaped():
    assert airflow_run_url("", PUSH_DAG, "manual__2026-11-26T10:00:00+00:00") == \
        "/dags/crm_push_customers/runs/manual__2026-11-26T10%3A00%3A00%2B00%3A00"
    assert airflow_run_url("/airflow/", "d", "a/b?c") == "/airflow/dags/d/runs/a%2Fb%3Fc"


def test_customer_query_checks_its_input_and_escapes_patterns():
    query = CustomerQuery.parse("  100%_off\\  ", "changed", "2", "20")
    params = query.params()
    assert params["search"] == "100%_off\\" and params["pattern"] == "%100\\%\\_off\\\\%"
    assert params["search_id"] is None and params["state"] == "changed"
    assert (params["limit"], params["offset"]) == (20, 20)
    assert CustomerQuery.parse("42", None).params()["search_id"] == 42
    # the search's shape picks the columns: an e-mail, a number (phone, ids), or text (name, e-mail, CRM id)
    assert [CustomerQuery.parse(s, None).kind() for s in ("dana@", "050-123 4567", "+972 (50) 1234567", "Dana",
                                                          "Q2", "100%", "-", None)] == \
        ["email", "number", "number", "text", "text", "text", "text", None]
    phone = CustomerQuery.parse("050-123 4567", None).params()
    assert phone["digits"] == "%0501234567%" and phone["search_id"] is None  # dashes: not an id
    assert CustomerQuery.parse("99999999999999999999", None).params()["search_id"] is None  # past bigint
    assert CustomerQuery.parse("٤٢", None).params()["search_id"] is None  # digits, but not ASCII ones
    assert CustomerQuery.parse("", "").params()["search"] is None
    assert len(CustomerQuery.parse("x" * 5000, None).search) == 200
    for state in STATE_KEYS:
        assert CustomerQuery.parse(None, state).state == state
    for bad in (dict(state="deleted"), dict(page="0"), dict(page="two"), dict(page_size=MAX_PAGE_SIZE + 1)):
        with pytest.raises(ValueError):
            CustomerQuery.parse(None, bad.get("state"), bad.get("page", 1), bad.get("page_size", 50))


def test_the_runs_chart_sums_days_and_scales_the_queue():
    day = datetime(2026, 11, 20, 3, tzinfo=timezone.utc)
    runs = [{"started_at": day, "fetched": 100, "pushed": 10, "failed": 0},
            {"started_at": day + timedelta(hours=5), "fetched": 50, "pushed": 0, "failed": 5},
            {"started_at": day + timedelta(days=2), "fetched": 300, "pushed": 1, "failed": 1}]
    queue = [{"finished_at": day + timedelta(minutes=1), "queued": 0},
             {"finished_at": day + timedelta(days=2, minutes=1), "queued": 4}]
    chart = runs_chart(runs, queue)
    assert chart.y_max == 300 and chart.queue_max == 4
    titles = [bar.title for bar in chart.bars]
    assert titles == ["2026-11-20: 150 pulled", "2026-11-20: 10 pushed", "2026-11-20: 5 failed",
                      "2026-11-22: 300 pulled", "2026-11-22: 1 pushed", "2026-11-22: 1 failed"]
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.title.endswith("300 pulled") and tallest.y + tallest.height == chart.height - 28
    points = [tuple(map(float, p.split(","))) for p in chart.line.split()]
    assert points[0][1] > points[1][1]  # 4 queued is drawn higher than 0
    assert runs_chart([], []).bars == [] and runs_chart([], []).line == ""
