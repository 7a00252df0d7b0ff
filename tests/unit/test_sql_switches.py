"""A statement's switchable parts (crmsync.db.sql.load_switched): what a run does not need is
not sent, so PostgreSQL does not even plan it."""

from __future__ import annotations

from crmsync.db import sql


def test_lines_and_blocks_follow_their_switch(tmp_path, monkeypatch):
    (tmp_path / "demo.sql").write_text(
        "SELECT 1\n"
        "-- when fancy: begin\n"
        ", 2\n"
        ", 3\n"
        "-- when fancy: end\n"
        ", 4  -- when fancy\n"
        ", 5  -- unless fancy\n"
        "-- unless fancy: begin\n"
        ", 7\n"
        ", 8  -- when other\n"
        "-- unless fancy: end\n"
        ", 6  -- when other\n", encoding="utf-8")
    monkeypatch.setenv("CRMSYNC_SQL_DIR", str(tmp_path))
    sql.load.cache_clear()
    sql.load_switched.cache_clear()
    try:
        on = sql.load_switched("demo", "fancy", True)
        off = sql.load_switched("demo", "fancy", False)
        off_and_other_off = sql.load_switched("demo", "fancy", False, "other", False)
    finally:
        sql.load.cache_clear()
        sql.load_switched.cache_clear()
    assert [line.split("--")[0].strip() for line in on.splitlines() if not line.startswith("--")] == \
        ["SELECT 1", ", 2", ", 3", ", 4", ", 6"]
    assert [line.split("--")[0].strip() for line in off.splitlines() if not line.startswith("--")] == \
        ["SELECT 1", ", 5", ", 7", ", 8", ", 6"]
    assert [line.split("--")[0].strip() for line in off_and_other_off.splitlines() if not line.startswith("--")] == \
        ["SELECT 1", ", 5", ", 7"]


def test_a_pull_with_nothing_to_match_sends_no_matching_part():
    def code(text):  # the statement without its comments
        return "\n".join(line.split("--")[0] for line in text.splitlines())

    plain = code(sql.load_switched("pull_page", "matching", False))
    matching = code(sql.load_switched("pull_page", "matching", True))
    assert "crmsync_match" not in plain and "set_aside AS (" not in plain and "0 AS set_aside" in plain
    assert "crmsync_match_local" in matching and "set_aside AS (" in matching and "0 AS set_aside" not in matching
