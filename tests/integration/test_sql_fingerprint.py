"""The fingerprint PostgreSQL computes for a row (crmsync_local_fingerprint, inlined for speed)
is the one Python computes for the same values (crmsync.core.fingerprint), and the array form's."""

from __future__ import annotations

from crmsync.core.fingerprint import fields_fingerprint
from crmsync.core.model import SYNCED_COLUMNS

TRICKY = [None, "", " ", "-", "|", "a|b", "1:x", "3:abc|", "מאפיית השכונה בע\"מ", "emoji 😀", "x" * 500,
          "line\nbreak", "tab\there", "NULL", "'; DROP TABLE x; --"]


def test_sql_and_python_fingerprints_are_the_same(pg):
    rows = []
    for offset in range(len(TRICKY)):
        values = {column: TRICKY[(offset + i) % len(TRICKY)] for i, column in enumerate(SYNCED_COLUMNS)}
        values["name"] = values["name"] or f"name {offset}"  # name is NOT NULL
        rows.append(values)
    columns = ", ".join(SYNCED_COLUMNS)
    placeholders = ", ".join(f"%({c})s" for c in SYNCED_COLUMNS)
    array = ", ".join(f"c.{c}" for c in SYNCED_COLUMNS)
    with pg.connect() as conn:
        for values in rows:
            inline, from_array = conn.execute(
                f"WITH c AS (INSERT INTO sumit_customers ({columns}) VALUES ({placeholders}) RETURNING *) "
                f"SELECT crmsync_local_fingerprint(c), crmsync_fingerprint(ARRAY[{array}]) FROM c", values).fetchone()
            assert inline == from_array == fields_fingerprint(values), values
        conn.rollback()
