"""tests/conftest.py's guard: a run that skipped an end-to-end test fails, naming the tests and the
reasons; a run that collected none, or deselected them, does not. Run on a project of its own
(pytester) whose conftest is tests/conftest.py itself, serially and under pytest-xdist."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
E2E_RUNS = '''
import pytest


@pytest.fixture
def chromium():
    pytest.skip("Chromium missing")


def test_passes():
    pass


def test_skipped_in_its_body():
    pytest.skip("no live Airflow")


def test_skipped_by_a_fixture(chromium):
    pass


@pytest.mark.skip(reason="marked to skip")
def test_marked():
    pass


@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False
'''
E2E_WHOLE_MODULE = '''
import pytest

pytest.skip("playwright missing", allow_module_level=True)


def test_in_a_skipped_module():
    pass
'''
SKIPPED = {"tests/e2e/test_runs.py::test_skipped_in_its_body": "no live Airflow",
           "tests/e2e/test_runs.py::test_skipped_by_a_fixture": "Chromium missing",
           "tests/e2e/test_runs.py::test_marked": "marked to skip",
           "tests/e2e/test_whole_module.py": "playwright missing"}
XDIST = ("-p", "xdist.plugin", "-n", "2", "--dist", "loadgroup")


@pytest.fixture
def project(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # only what a case names (xdist): a faster start
    pytester.makeini("[pytest]\ntestpaths = tests\naddopts = -p no:cacheprovider\n")
    for path, text in {"tests/conftest.py": CONFTEST.read_text(encoding="utf-8"), "tests/e2e/__init__.py": "",
                       "tests/e2e/test_runs.py": E2E_RUNS, "tests/e2e/test_whole_module.py": E2E_WHOLE_MODULE,
                       "tests/unit/test_fast.py": "def test_fast():\n    pass\n"}.items():
        (pytester.path / path).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / path).write_text(text, encoding="utf-8")
    return pytester


def guard_lines(result) -> list[str]:
    """The guard's list: a line per skipped test, indented (pytest's progress lines are not)."""
    return [line[2:] for line in result.outlines if line.startswith("  tests/e2e/")]


@pytest.mark.parametrize("workers", [(), XDIST], ids=["serial", "xdist"])
def test_a_run_that_skipped_an_end_to_end_test_fails_naming_each_and_why(project, workers):
    result = project.runpytest_subprocess(*workers)
    if workers:
        result.stdout.fnmatch_lines(["2 workers *"])  # the reports came from worker processes
    result.assert_outcomes(passed=2, skipped=4, xfailed=1)  # every other outcome as pytest counts it
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*end-to-end tests skipped: the run fails*", "4 end-to-end test(s) skipped*"])
    assert sorted(guard_lines(result)) == sorted(f"{nodeid}: {reason}" for nodeid, reason in SKIPPED.items())


@pytest.mark.parametrize("workers", [(), XDIST], ids=["serial", "xdist"])
def test_a_module_skipped_whole_fails_the_run_though_no_test_was_collected(project, workers):
    result = project.runpytest_subprocess("tests/e2e/test_whole_module.py", *workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # pytest alone says 5, no tests collected
    assert guard_lines(result) == ["tests/e2e/test_whole_module.py: playwright missing"]


@pytest.mark.parametrize("args", [("tests/unit",), ("-k", "not skipped and not marked", "tests/e2e/test_runs.py"),
                                  ("-k", "not skipped and not marked", "tests/e2e/test_runs.py", *XDIST)],
                         ids=["no-e2e-collected", "deselected", "deselected-xdist"])
def test_a_run_that_collected_none_or_deselected_them_passes(project, args):
    result = project.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.OK, result.outlines[-15:]
    assert "end-to-end tests skipped" not in result.stdout.str() and guard_lines(result) == []
