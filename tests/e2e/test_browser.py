"""The Airflow UI in headless Chromium: log in, trigger crm_push_customers from its form, see it succeed.

Debian's Chromium (scripts/system-deps.sh installs it), driven by Playwright for Python
through ``executable_path`` (Playwright's own browser download is never used). The last
screen is saved to artifacts/browser-push-run.png.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .live_helpers import CHROMIUM, CHROMIUM_FLAGS, PUSH_DAG, RUN_TIMEOUT_SECONDS, add_customers, require_chromium

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "artifacts" / "browser-push-run.png"
FAILURE_SCREENSHOT = ROOT / "artifacts" / "browser-failure.png"  # the screen when the test failed


@pytest.fixture
def page(tmp_path, request):
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile every time
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1440, "height": 1000}, timezone_id="Asia/Jerusalem")
        context.set_default_timeout(30_000)
        page = context.pages[0] if context.pages else context.new_page()
        try:
            yield page
            if getattr(request.node, "failed", False):
                FAILURE_SCREENSHOT.parent.mkdir(exist_ok=True)
                page.screenshot(path=str(FAILURE_SCREENSHOT), full_page=True)
        finally:
            context.close()


def test_trigger_push_from_the_ui(page, live_airflow, api, customers_table):
    ids = add_customers(customers_table, "Browser Trigger Ltd", "לקוח מהדפדפן")
    api.ok("PATCH", f"/api/v2/dags/{PUSH_DAG}", json={"is_paused": True})  # as on a fresh `make airflow`
    before = {r["dag_run_id"] for r in api.ok("GET", f"/api/v2/dags/{PUSH_DAG}/dagRuns")["dag_runs"]}

    page.goto(f"{live_airflow.url}/dags/{PUSH_DAG}")
    page.get_by_label("Username").fill(live_airflow.username)
    page.get_by_label("Password").fill(live_airflow.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_airflow.url}/dags/{PUSH_DAG}**")

    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"Unpause {PUSH_DAG} on trigger")).to_be_visible()  # new DAGs start paused
    # The param is a JSON editor (Monaco) that re-formats every valid keystroke: paste the list whole.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_airflow.url)
    page.evaluate("text => navigator.clipboard.writeText(text)", json.dumps(ids))
    dialog.locator("#element_customer_ids .view-lines").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Control+V")
    editor_text = dialog.locator("#element_customer_ids .view-lines")
    for customer_id in ids:
        expect(editor_text).to_contain_text(str(customer_id))
    expect(dialog.get_by_text("This field is required")).to_have_count(0)
    dialog.get_by_role("button", name="Trigger").click()

    run_id = _new_run(api, before)
    finished = api.wait_for_run(PUSH_DAG, run_id, timeout=RUN_TIMEOUT_SECONDS)
    assert finished["triggered_by"] == "ui" and finished["triggering_user_name"] == live_airflow.username
    assert finished["conf"]["customer_ids"] == ids
    assert finished["state"] == "success", api.task_states(PUSH_DAG, run_id)
    assert api.ok("GET", f"/api/v2/dags/{PUSH_DAG}")["is_paused"] is False  # the form's "Unpause" did it

    # The run has succeeded (above); the UI shows it once its grid loaded, which a loaded machine
    # takes more than expect's default 5 s to do.
    page.goto(f"{live_airflow.url}/dags/{PUSH_DAG}/runs/{run_id}")
    expect(page.get_by_text(run_id).first).to_be_visible(timeout=30_000)
    for task_id in ("prepare_customers_table", "push_to_crm", "report"):
        expect(page.get_by_role("row").filter(has_text=task_id)).to_contain_text("Success", timeout=30_000)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    with customers_table.connect() as conn:
        linked = conn.execute("SELECT count(sumit_customer_id) FROM sumit_customers WHERE id = ANY(%s)",
                              (ids,)).fetchone()[0]
    assert linked == 2
    in_crm = {c["Name"] for c in live_airflow.sandbox.control.customers()}
    assert {"Browser Trigger Ltd", "לקוח מהדפדפן"} <= in_crm


def _new_run(api, before: set[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.ok("GET", f"/api/v2/dags/{PUSH_DAG}/dagRuns")["dag_runs"]
        new = [r["dag_run_id"] for r in runs if r["dag_run_id"] not in before]
        if new:
            return new[0]
        time.sleep(0.5)
    raise AssertionError("the trigger form made no run")
