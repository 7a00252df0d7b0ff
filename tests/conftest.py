"""Shared pytest setup: crmsync's package (plugins/) on the path."""

import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))


# -- the reliability table -------------------------------------------------------------------------
# Fault and bad-input tests record what they measured (cases tried, outcome, rows lost or
# duplicated); `make test` prints the table at the end and docs/reliability.md keeps a copy.


RELIABILITY: list[dict] = []


@pytest.fixture
def reliability():
    """``reliability("SIGKILL mid-pull", outcome="re-run completed", lost=0, duplicated=0)``.

    ``lost`` and ``duplicated`` have no default: every row prints what its test measured.
    Record before asserting on the same figures, so a failing case shows in the table too."""

    def record(kind: str, *, outcome: str, lost: int, duplicated: int, cases: int = 1) -> None:
        RELIABILITY.append({"kind": kind, "cases": cases, "outcome": outcome, "lost": lost, "duplicated": duplicated})

    return record


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
    if RELIABILITY:
        terminalreporter.section("reliability: faults and bad input (docs/reliability.md)")
        for line in reliability_table(RELIABILITY):
            terminalreporter.write_line(line)
