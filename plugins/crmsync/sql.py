"""The SQL crmsync runs lives in include/sql/; this finds and reads it."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

# plugins/crmsync/sql.py -> <project>/include/sql; an installed package sets CRMSYNC_SQL_DIR.
_DEFAULT_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"


def sql_dir() -> Path:
    return Path(os.environ.get("CRMSYNC_SQL_DIR") or _DEFAULT_DIR)


@lru_cache(maxsize=None)
def load(name: str) -> str:
    path = sql_dir() / f"{name}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"crmsync SQL file {path} is missing; set CRMSYNC_SQL_DIR to include/sql") from None
