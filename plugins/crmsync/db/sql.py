"""The SQL crmsync runs: one statement per file, ``include/sql/<name>.sql`` in the repository.

Where the files are read from, the first that applies:

1. ``CRMSYNC_SQL_DIR``, when set;
2. the copy installed with the package, ``crmsync/_sql/`` (pyproject.toml maps the data
   package ``crmsync._sql`` to include/sql, so every wheel and ``pip install .`` holds it);
3. the checkout's include/sql (plugins/crmsync/db/sql.py -> <project>/include/sql): an editable
   install, or crmsync imported from Airflow's plugins folder.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

_PACKAGED_DIR = Path(__file__).resolve().parents[1] / "_sql"
_CHECKOUT_DIR = Path(__file__).resolve().parents[3] / "include" / "sql"


def sql_dir() -> Path:
    configured = os.environ.get("CRMSYNC_SQL_DIR")
    if configured:
        return Path(configured)
    return _PACKAGED_DIR if _PACKAGED_DIR.is_dir() else _CHECKOUT_DIR


def names() -> list[str]:
    """Every statement's name (``load`` takes it), sorted."""
    return sorted(path.stem for path in sql_dir().glob("*.sql"))


@lru_cache(maxsize=None)
def load(name: str) -> str:
    path = sql_dir() / f"{name}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"crmsync SQL file {path} is missing: the installed package lacks crmsync/_sql and there is no "
            "checkout's include/sql; reinstall crmsync (pip install .) or set CRMSYNC_SQL_DIR to include/sql"
        ) from None


@lru_cache(maxsize=None)
def load_switched(name: str, *switches: str | bool) -> str:
    """Statement ``name`` with the parts that depend on each switch chosen (``switches`` is
    ``switch, on[, switch, on ...]``), so that a part a run does not need is not even planned: a
    line ending in ``-- when <switch>`` is kept only when ``on``, one ending in ``-- unless
    <switch>`` only when not, and the lines from ``-- when <switch>: begin`` to ``-- when
    <switch>: end`` are a block kept only when ``on`` (from ``-- unless <switch>: begin`` to ``-- unless
    <switch>: end``, only when not)."""
    text = load(name)
    for switch, on in zip(switches[::2], switches[1::2]):
        text = _choose(text, str(switch), bool(on))
    return text


def _choose(text: str, switch: str, on: bool) -> str:
    kept, block = [], None  # in a block: whether it is kept
    for line in text.splitlines():
        marker = line.rstrip()
        if marker.endswith((f"-- when {switch}: begin", f"-- unless {switch}: begin")):
            block = on if marker.endswith(f"-- when {switch}: begin") else not on
        elif marker.endswith((f"-- when {switch}: end", f"-- unless {switch}: end")):
            block = None
        elif block is False:
            continue
        elif re.search(rf"-- when {re.escape(switch)}$", marker) and not on:
            continue
        elif re.search(rf"-- unless {re.escape(switch)}$", marker) and on:
            continue
        else:
            kept.append(line)
    return "\n".join(kept) + "\n"
