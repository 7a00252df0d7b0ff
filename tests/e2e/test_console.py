"""The sync console (the crmsync_console plugin) as people use it: in headless Chromium, against
the live Airflow, through Airflow's login page and its "CRM sync" navigation entry.

Every action is checked where it lands: the DAG run in Airflow's REST API (its conf, who
started it), the customers table, and the SUMIT sandbox (its log of received requests).
Without a login nothing is shown or started; a viewer may read but not act; a call with the
login cookie from another origin is refused; a hostile customer name stays text.

The screenshots docs/console.md shows (and README.md the Customers one) are made here:
artifacts/console-*.png, copied to docs/images/.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from .live_helpers import (CHROMIUM, CHROMIUM_FLAGS, PULL_DAG, PUSH_DAG, RUN_TIMEOUT_SECONDS, SYNC_DAG, add_customers,
                           login_token, require_chromium, run_ids)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
DOC_IMAGES = ROOT / "docs" / "images"
FAILURE_SCREENSHOT = ARTIFACTS / "console-failure.png"
RESOLVE_DAG = "crm_resolve_conflicts"
LINK_DAG = "crm_link_customers"
ACTION_DAGS = (PULL_DAG, PUSH_DAG, SYNC_DAG, RESOLVE_DAG, LINK_DAG)
UPDATE_PATH = "/website/customers/update/"  # the guide profile's push endpoint
RUN_MS = RUN_TIMEOUT_SECONDS * 1000  # a run's outcome, polled by the console
EXPECT_MS = 30_000  # anything else the browser shows
HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_CRM = "\"'><script>alert(2)</script><img src=x onerror=alert(2)>"
CONSOLE_PAGES = ("/crmsync/customers", "/crmsync/runs", "/crmsync/errors", "/crmsync/conflicts",
                 "/crmsync/matches", "/crmsync/mass-changes")


# -- the browser -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    # Airflow's UI can take longer than expect()'s 5 s to render on a busy 2-core machine.
    expect.set_options(timeout=EXPECT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
            expect.set_options(timeout=None)  # back to Playwright's default for other modules


def _context(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, timezone_id="Asia/Jerusalem")
    context.set_default_timeout(EXPECT_MS)
    return context


@pytest.fixture(scope="module")
def admin(browser, live_airflow):
    """A browser context logged in as the admin through Airflow's login page (its ``_token``
    cookie), shared by the tests that act as the admin (the browser's cache saves reloading
    Airflow's UI)."""
    context = _context(browser)
    page = context.new_page()
    log_in(page, live_airflow, live_airflow.username, live_airflow.password)
    page.close()
    yield context
    context.close()


@pytest.fixture
def new_page(browser, request):
    """``new_page()``: a page in a fresh browser context (no cookie); ``new_page(admin)``: a page
    of that context. Closed after the test; the last one is screenshot to
    artifacts/console-failure.png when the test failed."""
    pages, contexts = [], []

    def make(context=None):
        if context is None:
            context = _context(browser)
            contexts.append(context)
        pages.append(context.new_page())
        return pages[-1]

    yield make
    if getattr(request.node, "failed", False) and pages and not pages[-1].is_closed():
        ARTIFACTS.mkdir(exist_ok=True)
        pages[-1].screenshot(path=str(FAILURE_SCREENSHOT))
    for page in pages:
        page.close()
    for context in contexts:
        context.close()


def log_in(page, live, username: str, password: str) -> None:
    """Airflow's own login page, as a person fills it in."""
    page.goto(f"{live.url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(nav_entry(page)).to_be_visible()


def nav_entry(page):
    """"CRM sync" in Airflow's navigation (the plugin's external view)."""
    return page.locator('a[aria-label="CRM sync"][href="/plugin/crmsync"]')


def open_console(page, live=None, tab: str | None = None):
    """The console in Airflow's frame: by clicking "CRM sync" in Airflow's navigation, or, with
    ``live``, at that entry's address; on its page ``tab`` (a click in the console)."""
    if live is None:
        nav_entry(page).click()
    else:
        page.goto(f"{live.url}/plugin/crmsync")
    expect(page).to_have_url(re.compile(r"/plugin/crmsync"))
    console = page.frame_locator('iframe[title="CRM sync"]')
    expect(console.get_by_role("navigation", name="Console pages")).to_be_visible()
    return console_tab(console, tab) if tab else console


def console_tab(console, tab: str):
    """Open one of the console's pages (Customers, Runs, ...) from its own tabs."""
    console.get_by_role("navigation", name="Console pages").get_by_role("link", name=tab).click()
    expect(console.locator("nav.tabs a[aria-current=page]")).to_have_text(tab)
    return console


def confirm(console, question: str, ok: str) -> None:
    """The console's confirmation: it asks ``question``; press ``ok``."""
    dialog = console.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(console.locator("#confirm-text")).to_have_text(question)
    expect(console.locator("#confirm-ok")).to_have_text(ok)
    console.locator("#confirm-ok").click()


def finished(console):
    """The newest notification, once its run has finished (its outcome polled to the end)."""
    box = console.locator("#notifications .notification").first
    expect(box).to_have_attribute("data-state", re.compile("^(success|failed)$"), timeout=RUN_MS)
    return box


def run_of(box) -> str:
    """The run id a notification names (its link to the run in Airflow)."""
    return box.get_by_role("link").first.inner_text().strip()


SCREENSHOT_MIN_BYTES = 10_000  # a 1440x1000 page of the console; an empty or cut PNG is far smaller


def screenshot(page, name: str) -> Path:
    """artifacts/<name>, written by this call, copied to docs/images/ for docs/console.md and the
    README. The file an earlier run left is removed first: only this run's screenshot can pass."""
    ARTIFACTS.mkdir(exist_ok=True)
    DOC_IMAGES.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / name
    shot.unlink(missing_ok=True)
    page.screenshot(path=str(shot))
    size = shot.stat().st_size if shot.is_file() else 0
    assert size > SCREENSHOT_MIN_BYTES, f"{shot}: the screenshot was not written ({size} bytes)"
    shutil.copyfile(shot, DOC_IMAGES / name)
    assert (DOC_IMAGES / name).read_bytes() == shot.read_bytes(), f"docs/images/{name} is not this run's screenshot"
    return shot


# -- data ------------------------------------------------------------------------------------------

def rows(pg, query: str, *args) -> list[tuple]:
    with pg.connect() as conn:
        return conn.execute(query, args).fetchall()


def pushed_since(live, start: int) -> list[dict]:
    """The customers SUMIT received pushes of since the request log held ``start`` requests."""
    return [r["body"]["Customer"] for r in live.sandbox.control.requests()[start:] if r["path"] == UPDATE_PATH]


def run_dag(api, dag_id: str, conf: dict | None = None) -> dict:
    """A run through the REST API, to its end: it must succeed."""
    api.unpause(dag_id)
    run = api.wait_for_run(dag_id, api.trigger(dag_id, conf)["dag_run_id"])
    assert run["state"] == "success", api.task_states(dag_id, run["dag_run_id"])
    return run


def tag() -> str:
    return secrets.token_hex(3)


@pytest.fixture(scope="module")
def linked(live_airflow, api, customers_table) -> dict[str, dict]:
    """CRM customers some tests below need, pulled into the table once (one pull for them all):
    {key: their CRM record, with "CustomerID" and "local_id"}."""
    t = tag()
    records = {
        "conflict": {"Name": f"Console Conflict {t}", "Email": "crm-before@example.co.il", "Phone": "050-1111111",
                     "City": "Haifa"},
        "hostile": {"Name": HOSTILE_CRM, "Email": "hostile@example.co.il"},
        "mass 1": {"Name": f"Console Mass {t} One", "City": "Eilat"},
        "mass 2": {"Name": f"Console Mass {t} Two", "City": "Eilat"},
    }
    crm_ids = live_airflow.sandbox.control.add_customers(list(records.values()))
    run_dag(api, PULL_DAG)
    for record, crm_id in zip(records.values(), crm_ids):
        [(local_id,)] = rows(customers_table, "SELECT id FROM sumit_customers WHERE sumit_customer_id = %s",
                             str(crm_id))
        record.update(CustomerID=str(crm_id), local_id=local_id)
    return records


def crm_record(record: dict, **changes) -> dict:
    """``record`` as the sandbox's control API takes it (an update: it names its CustomerID)."""
    return {**{k: v for k, v in record.items() if k != "local_id"}, **changes}


# -- 1. push two chosen customers ------------------------------------------------------------------

def test_push_two_searched_customers_from_the_console(new_page, live_airflow, api, customers_table):
    t = tag()
    alpha, beta, gamma = names = [f"Console Push {t} Alpha", f"Console Push {t} Beta", f"Console Push {t} Gamma"]
    alpha_id, beta_id, gamma_id = add_customers(customers_table, *names)
    api.unpause(PUSH_DAG)
    log_start = len(live_airflow.sandbox.control.requests())

    page = new_page()
    log_in(page, live_airflow, live_airflow.username, live_airflow.password)
    console = open_console(page)
    console.get_by_role("searchbox", name="Search customers").fill(f"Console Push {t}")
    console.get_by_role("searchbox", name="Search customers").press("Enter")
    expect(console.locator("#customer-count")).to_have_text("3 customers")
    expect(console.locator("#customers tbody tr")).to_have_count(3)
    push_selected = console.get_by_role("button", name="Push selected to CRM")
    expect(push_selected).to_be_disabled()
    console.get_by_label(f"Select {alpha}").check()
    console.get_by_label(f"Select {gamma}").check()
    expect(console.locator("#selected-count")).to_have_text("2 selected")
    push_selected.click()
    confirm(console, f"Push 2 customers to the CRM: {alpha}, {gamma}?", "Push")

    box = finished(console)
    expect(box.locator(".outcome")).to_have_text("Pushed 2 customers, 0 failed")
    expect(box).to_have_class(re.compile(r"\bsuccess\b"))
    run_id = run_of(box)
    run = api.ok("GET", f"/api/v2/dags/{PUSH_DAG}/dagRuns/{run_id}")
    assert run["state"] == "success", api.task_states(PUSH_DAG, run_id)
    assert run["conf"] == {"customer_ids": [alpha_id, gamma_id]}
    assert run["triggering_user_name"] == live_airflow.username
    assert run["triggered_by"] == "ui"  # the console passes the Referer on, as Airflow's own form

    # SUMIT received exactly these two customers, once each; Beta was not sent.
    sent = pushed_since(live_airflow, log_start)
    assert sorted((c["Name"], c.get("ExternalIdentifier")) for c in sent) == [
        (alpha, str(alpha_id)), (gamma, str(gamma_id))], sent
    assert beta not in {c["Name"] for c in live_airflow.sandbox.control.customers()}
    linked = dict(rows(customers_table, "SELECT id, sumit_customer_id IS NOT NULL FROM sumit_customers"
                                        " WHERE id = ANY(%s)", [alpha_id, beta_id, gamma_id]))
    assert linked == {alpha_id: True, beta_id: False, gamma_id: True}

    # The notification's link opens the run in Airflow (its window, not the console's frame) ...
    box.get_by_role("link", name=run_id).click()
    expect(page).to_have_url(re.compile(rf"/dags/{PUSH_DAG}/runs/"))
    assert page.evaluate("() => decodeURIComponent(location.pathname)").endswith(f"/runs/{run_id}")
    # ... whose "CRM sync" tab shows the run's summary and the customers it pushed.
    page.locator('a[href$="/plugin/crmsync_run"]').click()
    tab = page.frame_locator('iframe[title="CRM sync"]')
    expect(tab.locator("p.outcome")).to_contain_text("Pushed 2 customers, 0 failed")
    expect(tab.locator("#run-changes tbody tr")).to_have_count(2)
    expect(tab.locator("#run-changes")).to_contain_text(alpha)
    expect(tab.locator("#run-changes")).to_contain_text(gamma)
    screenshot(page, "console-run-tab.png")


# -- 2. pull, with the DAG paused --------------------------------------------------------------------

def test_pull_from_the_header_unpauses_the_dag_after_asking(new_page, admin, live_airflow, api,
                                                           customers_table):
    name = f"Console Pull {tag()}"
    [crm_id] = live_airflow.sandbox.control.add_customers([{"Name": name, "Email": "pulled@example.co.il"}])
    api.ok("PATCH", f"/api/v2/dags/{PULL_DAG}", json={"is_paused": True})
    before = run_ids(api, PULL_DAG)[PULL_DAG]

    page = new_page(admin)
    console = open_console(page, live_airflow)
    console.get_by_role("button", name="Pull from CRM").click()
    confirm(console, "Pull every customer from the CRM into the customers table?", "Pull from CRM")
    confirm(console, f"{PULL_DAG} is paused in Airflow: its runs would wait. Unpause it (its schedule starts "
                     "too) and start the run?", "Unpause and run")

    box = finished(console)
    expect(box).to_have_class(re.compile(r"\bsuccess\b"))
    expect(box.locator(".outcome")).to_have_text(re.compile(r"^Pulled \d+ customers?: [1-9]\d* new, \d+ updated"))
    run_id = run_of(box)
    assert run_ids(api, PULL_DAG)[PULL_DAG] - before == {run_id}  # one run, after the second answer
    run = api.ok("GET", f"/api/v2/dags/{PULL_DAG}/dagRuns/{run_id}")
    assert (run["state"], run["conf"], run["triggering_user_name"]) == ("success", {}, live_airflow.username)
    assert api.ok("GET", f"/api/v2/dags/{PULL_DAG}")["is_paused"] is False
    assert rows(customers_table, "SELECT name FROM sumit_customers WHERE sumit_customer_id = %s",
                str(crm_id)) == [(name,)]


# -- 3. resolve a conflict ----------------------------------------------------------------------------

def test_keep_local_resolves_a_real_conflict(new_page, admin, live_airflow, api, customers_table, linked):
    control = live_airflow.sandbox.control
    customer = linked["conflict"]
    name, crm_id, customer_id = customer["Name"], customer["CustomerID"], customer["local_id"]
    # Both sides change the pulled customer: locally (another application's edit) and in the CRM.
    with customers_table.connect() as conn:
        conn.execute("UPDATE sumit_customers SET email = 'local@example.co.il', city = 'Local City' WHERE id = %s",
                     (customer_id,))
    control.add_customers([crm_record(customer, Email="crm@example.co.il", Phone="050-9999999")])
    run_dag(api, PULL_DAG, {"conflict_policy": "crm_wins"})
    [(conflict_id, winner)] = rows(customers_table, "SELECT id, winner FROM crm_sync_conflicts"
                                                    " WHERE customer_id = %s AND resolution IS NULL", customer_id)
    assert winner == "crm"
    assert rows(customers_table, "SELECT email, city FROM sumit_customers WHERE id = %s",
                customer_id) == [("crm@example.co.il", "Haifa")]
    api.unpause(RESOLVE_DAG)

    page = new_page(admin)
    console = open_console(page, live_airflow, "Conflicts")
    section = console.locator(f'section.conflict[data-conflict-id="{conflict_id}"]')
    expect(section.get_by_role("heading")).to_contain_text(name)
    email = section.locator("table.versions tr.differs", has_text="email")
    expect(email).to_contain_text("local@example.co.il")
    expect(email).to_contain_text("crm@example.co.il")
    screenshot(page, "console-conflicts.png")

    log_start = len(control.requests())
    section.get_by_role("button", name="Keep local (push it)").click()
    confirm(console, f"Keep the local version of {name} and push it to the CRM?", "Resolve")
    box = finished(console)
    expect(box.locator(".outcome")).to_have_text("Resolved 1 conflict: 1 rewritten, pushed 1 customer, 0 failed")
    expect(box).to_have_class(re.compile(r"\bsuccess\b"))
    run_id = run_of(box)
    run = api.ok("GET", f"/api/v2/dags/{RESOLVE_DAG}/dagRuns/{run_id}")
    assert run["conf"] == {"conflict_ids": [conflict_id], "keep": "local"}
    assert run["state"] == "success", api.task_states(RESOLVE_DAG, run_id)
    expect(section.get_by_role("button", name="Keep local (push it)")).to_be_disabled()

    # The local side is back in the row and in SUMIT (pushed once); the conflict is settled.
    record = next(c for c in control.customers() if str(c["CustomerID"]) == crm_id)
    assert (record["Email"], record["City"], record["Phone"]) == ("local@example.co.il", "Local City", "050-1111111")
    assert [str(c.get("CustomerID")) for c in pushed_since(live_airflow, log_start)] == [crm_id]
    assert rows(customers_table, "SELECT email, city FROM sumit_customers WHERE id = %s",
                customer_id) == [("local@example.co.il", "Local City")]
    assert rows(customers_table, "SELECT resolution, resolved_by FROM crm_sync_conflicts WHERE id = %s",
                conflict_id) == [("local", run_id)]
    console_tab(console, "Conflicts")  # the page again
    expect(console.locator("h1")).to_contain_text("Conflicts")
    expect(console.locator(f'section[data-conflict-id="{conflict_id}"]')).to_have_count(0)


# -- 3b. decide a match -------------------------------------------------------------------------------------

def test_link_these_two_links_a_held_pair(new_page, admin, live_airflow, api, customers_table):
    """Two CRM customers share the e-mail of one local customer: the pull holds all three (no
    twin inserted, nothing to create); a person links the right pair from the Matches page."""
    t = tag()
    email = f"twin-{t}@example.co.il"
    one, two = live_airflow.sandbox.control.add_customers([
        {"Name": f"Match {t} Ltd", "Email": email, "City": "Acre"},
        {"Name": f"Match {t} Other", "Email": email.upper()}])
    with customers_table.connect() as conn:
        [(local_id,)] = conn.execute("INSERT INTO sumit_customers (name, email) VALUES (%s, %s) RETURNING id",
                                     (f"Match {t} Ltd", email)).fetchall()
    run_dag(api, PULL_DAG)
    held = dict(rows(customers_table, "SELECT coalesce(customer_id::text, sumit_customer_id), id FROM crm_sync_matches"
                                      " WHERE status = 'waiting' AND match_value = %s", email))
    assert set(held) == {str(local_id), str(one), str(two)}
    assert rows(customers_table, "SELECT count(*) FROM sumit_customers WHERE email ILIKE %s", email) == [(1,)]
    api.unpause(LINK_DAG)

    page = new_page(admin)
    console = open_console(page, live_airflow, "Matches")
    section = console.locator(f'section.match[data-value="{email}"]')  # the group: 1 local, 2 in the CRM
    expect(section.get_by_role("heading")).to_contain_text(email)
    expect(section.locator("table.versions")).to_contain_text("Acre")
    expect(section.locator("table.versions")).to_contain_text(f"Match {t} Other")
    expect(section.get_by_role("button", name=re.compile("^Different customers"))).to_have_count(3)
    screenshot(page, "console-matches.png")
    section.get_by_role("button", name=f"Link these two: local {local_id} and CRM {one}").click()
    confirm(console, f"Link Match {t} Ltd (local id {local_id}) and Match {t} Ltd (CRM id {one}) as one customer?",
            "Link")
    box = finished(console)
    expect(box).to_have_class(re.compile(r"\bsuccess\b"))
    expect(box.locator(".outcome")).to_contain_text("Linked 1 customer")
    run = api.ok("GET", f"/api/v2/dags/{LINK_DAG}/dagRuns/{run_of(box)}")
    assert run["conf"] == {"links": [[local_id, str(one)]]}
    assert rows(customers_table, "SELECT sumit_customer_id, city FROM sumit_customers WHERE id = %s",
                local_id) == [(str(one), "Acre")]
    assert rows(customers_table, "SELECT status FROM crm_sync_matches WHERE id IN (%s, %s) ORDER BY id",
                held[str(local_id)], held[str(one)]) == [("linked",), ("linked",)]


# -- 4. the retry queue ---------------------------------------------------------------------------------

def test_retry_now_pushes_a_fixed_customer_and_ignore_drops_another(new_page, admin, live_airflow, api,
                                                                   customers_table):
    control = live_airflow.sandbox.control
    t = tag()
    refused, ignored = f"Console Refused {t}", f"Console Ignored {t}"
    refused_id, ignored_id = add_customers(customers_table, refused, ignored)
    control.set_faults(reject_names=[refused, ignored])  # SUMIT refuses both
    try:
        run_dag(api, PUSH_DAG, {"customer_ids": [refused_id, ignored_id]})  # a warning: two rejects
        errors = dict(rows(customers_table, "SELECT customer_id, id FROM crm_sync_errors"
                                            " WHERE customer_id = ANY(%s) AND status = 'pending'",
                           [refused_id, ignored_id]))
        assert set(errors) == {refused_id, ignored_id}

        page = new_page(admin)
        console = open_console(page, live_airflow, "Errors")
        for customer_id, name in ((refused_id, refused), (ignored_id, ignored)):
            row = console.locator(f'#errors tr[data-error-id="{errors[customer_id]}"]')
            expect(row).to_contain_text(name)
            expect(row).to_contain_text("pending")
            expect(row.locator(".message-cell")).to_contain_text("Rejected by sandbox rule")
        screenshot(page, "console-errors.png")
        console_tab(console, "Customers")  # where they show as failed, with the reason
        expect(console.locator(f'#customers tr[data-id="{refused_id}"]')).to_contain_text("Push failed")
        screenshot(page, "console-customers.png")
        console_tab(console, "Errors")

        # Ignore one: no run retries it.
        console.get_by_label(f"Select {ignored}").check()
        console.get_by_role("button", name="Ignore").click()
        confirm(console, "Ignore 1 record? No run will retry them.", "Ignore")
        expect(console.locator("#notifications .notification").first).to_have_text(re.compile("^Ignored 1 record."))
        expect(console.locator(f'#errors tr[data-error-id="{errors[ignored_id]}"]')).to_have_count(0)
        assert rows(customers_table, "SELECT status FROM crm_sync_errors WHERE id = %s",
                    errors[ignored_id]) == [("ignored",)]

        # Fix the cause, then retry the other now.
        control.set_faults(reject_names=None)
        log_start = len(control.requests())
        console.get_by_label(f"Select {refused}").check()
        expect(console.locator("#selected-count")).to_have_text("1 selected")
        console.get_by_role("button", name="Retry now").click()
        confirm(console, "Push 1 customer again now?", "Retry now")
        box = finished(console)
        expect(box.locator(".outcome")).to_have_text("Pushed 1 customer, 0 failed")
        expect(box).to_have_class(re.compile(r"\bsuccess\b"))
        run = api.ok("GET", f"/api/v2/dags/{PUSH_DAG}/dagRuns/{run_of(box)}")
        assert run["conf"] == {"customer_ids": [refused_id]}
    finally:
        control.set_faults(reject_names=None)

    assert [c["Name"] for c in pushed_since(live_airflow, log_start)] == [refused]
    assert rows(customers_table, "SELECT status, resolved_at IS NOT NULL FROM crm_sync_errors WHERE id = %s",
                errors[refused_id]) == [("resolved", True)]
    assert rows(customers_table, "SELECT sumit_customer_id IS NOT NULL FROM sumit_customers WHERE id = %s",
                refused_id) == [(True,)]
    console_tab(console, "Errors")  # the page again
    expect(console.locator("h1")).to_have_text("The retry queue")
    expect(console.locator("#errors")).not_to_contain_text(refused)
    expect(console.locator("#errors")).not_to_contain_text(ignored)


# -- 5. no login ------------------------------------------------------------------------------------

def test_without_a_login_nothing_is_shown_or_started(live_airflow, api):
    before = run_ids(api, *ACTION_DAGS)
    for path in (*CONSOLE_PAGES, "/crmsync/customers/1", f"/crmsync/run/{PUSH_DAG}/x", "/crmsync/"):
        page = requests.get(live_airflow.url + path, timeout=30, allow_redirects=False)
        assert page.status_code == 401, (path, page.status_code)
        assert 'id="customers"' not in page.text and "Push to CRM" not in page.text
    body = {"dag_id": PULL_DAG, "conf": {}, "unpause": True}
    answers = [
        requests.post(live_airflow.url + "/crmsync/api/trigger", json=body, timeout=30),
        requests.post(live_airflow.url + "/crmsync/api/trigger", json=body, timeout=30,  # as from the console
                      headers={"Origin": live_airflow.url}),
        requests.post(live_airflow.url + "/crmsync/api/trigger", json=body, timeout=30,  # not Airflow's token
                      headers={"Authorization": "Bearer not-a-token"}),
        requests.post(live_airflow.url + "/crmsync/api/errors/ignore", json={"error_ids": [1]}, timeout=30),
        requests.get(f"{live_airflow.url}/crmsync/api/runs/{PULL_DAG}/x", timeout=30),
    ]
    # (403: Airflow's own answer to a token it cannot verify)
    assert [a.status_code for a in answers] == [401, 401, 403, 401, 401], [a.text for a in answers]
    assert run_ids(api, *ACTION_DAGS) == before


# -- 6. a viewer, and calls from another site ------------------------------------------------------------

def test_a_viewer_reads_but_cannot_act(new_page, live_airflow, api, viewer_login):
    username, password = viewer_login
    before = run_ids(api, *ACTION_DAGS)
    viewer = requests.Session()
    viewer.headers["Authorization"] = f"Bearer {login_token(live_airflow, username, password)}"
    for path in CONSOLE_PAGES:
        page = viewer.get(live_airflow.url + path, timeout=30)
        assert page.status_code == 200, (path, page.status_code, page.text[:300])
    for dag_id, conf in ((PULL_DAG, {}), (PUSH_DAG, {"customer_ids": [1]}), (SYNC_DAG, {}),
                         (RESOLVE_DAG, {"conflict_ids": [1], "keep": "local"}), (LINK_DAG, {"separate": [1]})):
        answer = viewer.post(live_airflow.url + "/crmsync/api/trigger", timeout=30,
                             json={"dag_id": dag_id, "conf": conf, "unpause": True})
        assert answer.status_code == 403, (dag_id, answer.status_code, answer.text)
        assert "can only read" in answer.json()["detail"]
    ignore = viewer.post(live_airflow.url + "/crmsync/api/errors/ignore", json={"error_ids": [1]}, timeout=30)
    assert ignore.status_code == 403, ignore.text

    # In the browser: the viewer sees the console and its buttons; the run is refused.
    page = new_page()
    log_in(page, live_airflow, username, password)
    console = open_console(page)
    expect(console.locator("#customers")).to_be_visible()
    console.get_by_role("button", name="Pull from CRM").click()
    confirm(console, "Pull every customer from the CRM into the customers table?", "Pull from CRM")
    box = console.locator("#notifications .notification").first
    expect(box).to_have_class(re.compile(r"\berror\b"))
    expect(box).to_contain_text(f"Not started: You may not start runs of {PULL_DAG}; your Airflow role can only read.")
    assert run_ids(api, *ACTION_DAGS) == before


def test_a_call_with_the_login_cookie_from_another_site_is_refused(admin, live_airflow, api):
    [cookie] = [c["value"] for c in admin.cookies() if c["name"] == "_token"]  # set by Airflow's login page
    before = run_ids(api, *ACTION_DAGS)
    url = live_airflow.url + "/crmsync/api/trigger"
    body = {"dag_id": PULL_DAG, "conf": {}, "unpause": True}
    attempts = {
        "another origin": {"json": body, "headers": {"Origin": "http://evil.example"}},
        "an opaque origin": {"json": body, "headers": {"Origin": "null"}},
        "no origin": {"json": body},
        "a form post": {"data": {"dag_id": PULL_DAG}, "headers": {"Origin": "http://evil.example"}},
        "text/plain from the own origin": {"data": '{"dag_id": "crm_pull_customers"}',
                                           "headers": {"Origin": live_airflow.url, "Content-Type": "text/plain"}},
    }
    answers = {what: requests.post(url, cookies={"_token": cookie}, timeout=30, **kwargs).status_code
               for what, kwargs in attempts.items()}
    assert answers == {"another origin": 403, "an opaque origin": 403, "no origin": 403, "a form post": 415,
                       "text/plain from the own origin": 415}
    ignore = requests.post(live_airflow.url + "/crmsync/api/errors/ignore", json={"error_ids": [1]}, timeout=30,
                           cookies={"_token": cookie}, headers={"Origin": "http://evil.example"})
    assert ignore.status_code == 403
    # The same cookie from the console's own origin is let through (to the read it asks for).
    assert requests.get(f"{live_airflow.url}/crmsync/customers", cookies={"_token": cookie}, timeout=30).ok
    assert run_ids(api, *ACTION_DAGS) == before


# -- 7. hostile names --------------------------------------------------------------------------------

def test_a_hostile_customer_name_stays_text(new_page, admin, live_airflow, api, customers_table, linked):
    [local_id] = add_customers(customers_table, HOSTILE)
    pulled_id = linked["hostile"]["local_id"]  # HOSTILE_CRM, pulled in from the CRM
    hostile = {local_id: HOSTILE, pulled_id: HOSTILE_CRM}

    page = new_page(admin)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # The console's own page (not Airflow's sandboxed frame, where an alert could not show).
    page.goto(f"{live_airflow.url}/crmsync/customers?q=onerror")
    for customer_id, name in hostile.items():
        row = page.locator(f'#customers tr[data-id="{customer_id}"]')
        assert row.locator("td.name").text_content() == name
        assert row.get_attribute("data-name") == name
        assert row.locator("input.pick").get_attribute("aria-label") == f"Select {name}"
    assert page.locator("#customers img, #customers script, #customers svg").count() == 0

    # The row's push asks about the name as text; cancelled, nothing starts.
    before = run_ids(api, PUSH_DAG)
    page.locator(f'#customers tr[data-id="{local_id}"]').get_by_role("button", name="Push to CRM").click()
    expect(page.locator("dialog#confirm")).to_be_visible()
    assert page.locator("#confirm-text").text_content() == f"Push {HOSTILE} (local id {local_id}) to the CRM?"
    assert page.locator("#confirm-text").evaluate("p => p.children.length") == 0
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("dialog#confirm")).to_be_hidden()
    expect(page.locator("#notifications .notification")).to_have_count(0)

    # The customers' own pages, and the list in Airflow's frame.
    for customer_id, name in hostile.items():
        page.goto(f"{live_airflow.url}/crmsync/customers/{customer_id}")
        assert page.locator("main h1").text_content() == name
        assert page.title() == f"{name} · crmsync"
        assert page.locator("main img, main script, main svg").count() == 0
    console = open_console(page, live_airflow)
    console.get_by_role("searchbox", name="Search customers").fill("onerror")
    console.get_by_role("searchbox", name="Search customers").press("Enter")
    expect(console.locator(f'#customers tr[data-id="{pulled_id}"] td.name')).to_have_text(HOSTILE_CRM)
    expect(console.locator(f'#customers tr[data-id="{local_id}"] td.name')).to_have_text(HOSTILE)
    expect(console.locator("#customers img")).to_have_count(0)
    page.wait_for_load_state("networkidle")
    assert dialogs == []
    assert run_ids(api, PUSH_DAG) == before


# -- 8. the screenshots of docs/console.md --------------------------------------------------------------

def test_screenshots_for_the_docs(new_page, admin, live_airflow, api, customers_table, linked):
    """Runs, and Mass changes with a pull waiting for approval (two CRM edits, over limits set
    low for this run; approved after the screenshot). The tests above made the others."""
    started = time.time()
    control = live_airflow.sandbox.control
    control.add_customers([crm_record(linked[key], City="Tel Aviv") for key in ("mass 1", "mass 2")])
    api.unpause(PULL_DAG)
    run_id = api.trigger(PULL_DAG, {"min_mass_change": 1, "max_change_ratio": 0})["dag_run_id"]
    try:
        api.wait_for_task(PULL_DAG, run_id, "approve_mass_change", {"awaiting_input"})
        waiting_since = time.monotonic()

        page = new_page(admin)
        console = open_console(page, live_airflow, "Runs")
        expect(console.locator("#runs tbody tr").first).to_contain_text("crm_")
        expect(console.locator("figure.chart rect").first).to_be_attached()
        screenshot(page, "console-runs.png")

        console_tab(console, "Mass changes")
        plan = console.locator("section.plan", has_text=run_id)
        expect(plan.locator("table.plan-fields")).to_contain_text("Tel Aviv")
        expect(plan.get_by_role("link", name="Review and approve in Airflow")).to_be_visible()
        screenshot(page, "console-mass-changes.png")
        # A person takes longer than the scheduler needs to see the task wait (see test_mass_change).
        time.sleep(max(0.0, 8 - (time.monotonic() - waiting_since)))
    finally:  # approved, so the run ends either way: a waiting run would hold up the next pulls
        if api.task_states(PULL_DAG, run_id).get("approve_mass_change") == "awaiting_input":
            api.ok("PATCH", f"/api/v2/dags/{PULL_DAG}/dagRuns/{run_id}/taskInstances/approve_mass_change/-1"
                            "/hitlDetails", json={"chosen_options": ["Approve"]})
    assert api.wait_for_run(PULL_DAG, run_id)["state"] == "success", api.task_states(PULL_DAG, run_id)
    console_tab(console, "Mass changes")  # the page again: the applied plan waits no more
    expect(console.locator("h1")).to_have_text("Mass changes waiting for approval")
    expect(console.locator("section.plan", has_text=run_id)).to_have_count(0)
    for key in ("mass 1", "mass 2"):
        assert rows(customers_table, "SELECT city FROM sumit_customers WHERE id = %s",
                    linked[key]["local_id"]) == [("Tel Aviv",)]
    for name in ("console-runs.png", "console-mass-changes.png"):  # written by this test, not a run before it
        shot = ARTIFACTS / name
        assert shot.stat().st_mtime >= started and shot.stat().st_size > SCREENSHOT_MIN_BYTES, name
        assert (DOC_IMAGES / name).read_bytes() == shot.read_bytes(), name
