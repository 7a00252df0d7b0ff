"""Shared pytest setup: crmsync's package (plugins/) on the path."""

import sys
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)  # tests/unit/test_e2e_guard.py runs pytest on a project of its own

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))


# -- parallel runs (pytest-xdist; `make test`: -n 3 --dist loadgroup) ---------------------------------
# Each worker starts its own PostgreSQL, sandbox and Airflow metadata database (session fixtures of
# tests/integration/conftest.py). The end-to-end tests share one live Airflow (package scope) and
# fixed paths in artifacts/, so they all go to one worker, as one unit. Not through xdist_group
# marks: pytest 9.2 stores node ids in a way xdist 3.8's loadgroup no longer rewrites
# (pytest-dev/pytest-xdist#1386), so a mark alone would be silently ignored; the scheduler below
# groups them by path instead.
E2E_TESTS = "tests/e2e/"
# ... but the CeleryExecutor module starts an Airflow of its own (artifacts/e2e-celery-airflow/): a unit of its own.
E2E_OWN_AIRFLOW = "tests/e2e/test_celery_workers.py"


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: without it (-p no:xdist) never called
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None  # another --dist: xdist's own scheduler
    from xdist.scheduler import LoadGroupScheduling

    class E2EOnOneWorker(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(E2E_OWN_AIRFLOW):
                return E2E_OWN_AIRFLOW
            return E2E_TESTS if nodeid.startswith(E2E_TESTS) else super()._split_scope(nodeid)

    return E2EOnOneWorker(config, log)


# -- the reliability table -------------------------------------------------------------------------
# Fault and bad-input tests record what they measured (cases tried, outcome, rows lost or
# duplicated); `make test` prints the table at the end and docs/reliability.md keeps a copy.
# A row travels in its test's report (``user_properties``): under pytest-xdist the tests run in
# worker processes and only their reports reach the process that prints the table.


RELIABILITY: list[dict] = []
RELIABILITY_PROPERTY = "crmsync_reliability"


@pytest.fixture
def reliability(request):
    """``reliability("SIGKILL mid-pull", outcome="re-run completed", lost=0, duplicated=0)``.

    ``lost`` and ``duplicated`` have no default: every row prints what its test measured.
    Record before asserting on the same figures, so a failing case shows in the table too."""
    item = request.node
    position = item.session.items.index(item)  # the table keeps the serial run's order

    def record(kind: str, *, outcome: str, lost: int, duplicated: int, cases: int = 1) -> None:
        item.user_properties.append((RELIABILITY_PROPERTY, {
            "position": position, "kind": kind, "cases": cases, "outcome": outcome, "lost": lost,
            "duplicated": duplicated}))

    return record


# Figures a test measured (the triggers' latency, say): `make test` prints them at the end, as
# the reliability table, whatever pytest's output capture did with the test's own output.
MEASURED: list[str] = []
MEASURED_PROPERTY = "crmsync_measured"


@pytest.fixture
def measured(request):
    """``measured("an edit reached the table in 1.4 s")``: a line for the summary's "measured" section."""
    def record(line: str) -> None:
        print(f"\nMEASURED: {line}")
        request.node.user_properties.append((MEASURED_PROPERTY, line))

    return record


def pytest_runtest_logreport(report):
    if report.when == "teardown":  # every test has one, carrying every row it recorded
        RELIABILITY.extend(value for name, value in report.user_properties if name == RELIABILITY_PROPERTY)
        MEASURED.extend(value for name, value in report.user_properties if name == MEASURED_PROPERTY)
    _note_e2e_skip(report)


# -- a skipped end-to-end test fails the run --------------------------------------------------------
# The end-to-end tests are the only proof that crmsync works in a live Airflow and a browser: a run
# that skipped one (Chromium missing, a fixture's pytest.skip, a module skipped whole) has not
# proven what `make test` promises, so it fails, naming the tests and the reasons. A run that
# collected no end-to-end test (`pytest tests/unit`) or deselected them (-k, -m) skipped none.
# The reports reach the process that prints the summary: under pytest-xdist, the controller
# (test reports, and the collection reports of modules skipped whole, which workers send on).

E2E_SKIPPED: dict[str, str] = {}  # node id: the reason it was skipped


def _note_e2e_skip(report) -> None:
    e2e = report.nodeid.startswith(E2E_TESTS) or report.nodeid == E2E_TESTS.rstrip("/")
    if report.skipped and e2e and not hasattr(report, "wasxfail"):  # an xfail is reported as skipped too
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, (tuple, list)) and len(longrepr) == 3 else str(longrepr)
        E2E_SKIPPED.setdefault(report.nodeid, reason.removeprefix("Skipped: "))


def pytest_collectreport(report):
    _note_e2e_skip(report)  # a module skipped whole (pytest.skip(allow_module_level=True), importorskip)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller sees every report and decides
    if E2E_SKIPPED and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def e2e_skipped_lines() -> list[str]:
    return [f"{len(E2E_SKIPPED)} end-to-end test(s) skipped, so this run fails: they prove crmsync in a live "
            "Airflow and a browser, and a run without them proves less than `make test` promises. Skipped:"] + [
        f"  {nodeid}: {reason}" for nodeid, reason in E2E_SKIPPED.items()]


def reliability_table(records: list[dict]) -> list[str]:
    kinds: dict[str, dict] = {}
    for r in records:
        row = kinds.setdefault(r["kind"], {"cases": 0, "outcomes": [], "lost": 0, "duplicated": 0})
        row["cases"] += r["cases"]
        row["lost"] += r["lost"]
        row["duplicated"] += r["duplicated"]
        if r["outcome"] not in row["outcomes"]:
            row["outcomes"].append(r["outcome"])
    lines = ["| fault or input class | cases | outcome | rows lost | rows duplicated |", "|---|---:|---|---:|---:|"]
    for kind, row in kinds.items():
        lines.append(f"| {kind} | {row['cases']} | {'; '.join(row['outcomes'])} | {row['lost']} | {row['duplicated']} |")
    return lines


def pytest_terminal_summary(terminalreporter):
    if E2E_SKIPPED and not hasattr(terminalreporter.config, "workerinput"):
        terminalreporter.section("end-to-end tests skipped: the run fails", red=True, bold=True)
        for line in e2e_skipped_lines():
            terminalreporter.write_line(line, red=True)
    if MEASURED:
        terminalreporter.section("measured")
        for line in MEASURED:
            terminalreporter.write_line(line)
    if RELIABILITY:
        terminalreporter.section("reliability: faults and bad input (docs/reliability.md)")
        for line in reliability_table(sorted(RELIABILITY, key=lambda r: r["position"])):
            terminalreporter.write_line(line)
