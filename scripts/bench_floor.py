"""The database floor of a full pull, measured by `make bench` beside crmsync's own pull.

What PostgreSQL alone needs to store the customers a full pull stores: the rows exactly as the
pull wrote them (mapped, fingerprinted, metadata built — taken from the bench database after
scenario 1, outside the timing) are COPYed (binary) into a staging table and merged into a
freshly emptied ``sumit_customers`` with the project's schema, indexes and journal triggers
(``crmsync.journal_run`` set, as a pull sets it), with one INSERT ... ON CONFLICT DO NOTHING,
and committed. No HTTP, no JSON, no Python per record: what no implementation of the pull can
go below on this machine and this server.
"""

from __future__ import annotations

import json
import time
from typing import Any

COLUMNS = ("sumit_customer_id, name, email, phone, company_name, tax_id, address, city, state, country, zip_code, "
           "metadata, synced_fingerprint, crm_fingerprint, crm_custom_fingerprint, synced_at")


def mapped_rows(source_dsn: str) -> bytes:
    """The pulled customers as the pull stored them, in COPY's binary format."""
    import psycopg

    data = bytearray()
    with psycopg.connect(source_dsn) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY (SELECT {COLUMNS} FROM sumit_customers ORDER BY id) TO STDOUT (FORMAT binary)") as copy:
            for block in copy:
                data += block
    return bytes(data)


def floor_once(dsn: str, rows: bytes) -> dict[str, float]:
    """One COPY + merge + commit into an emptied table; the seconds of each step."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE sumit_customers, crm_sync_changes, crm_sync_created")
        conn.execute("SELECT set_config('crmsync.journal_run', %s, false)",
                     [json.dumps({"dag_id": "floor", "dag_run_id": f"floor-{time.time_ns()}", "direction": "pull"})])
        conn.commit()
        conn.execute("CHECKPOINT")  # the truncate's dirty pages are not this measure's
        started = time.perf_counter()
        conn.execute(f"CREATE TEMP TABLE floor_staging ON COMMIT DROP AS SELECT {COLUMNS} FROM sumit_customers "
                     "WITH NO DATA")
        with conn.cursor() as cursor, cursor.copy(f"COPY floor_staging ({COLUMNS}) FROM STDIN (FORMAT binary)") as copy:
            copy.write(rows)
        copied = time.perf_counter()
        inserted = conn.execute(f"INSERT INTO sumit_customers ({COLUMNS}) SELECT {COLUMNS} FROM floor_staging "
                                "ON CONFLICT (sumit_customer_id) DO NOTHING").rowcount
        conn.commit()
        done = time.perf_counter()
    return {"copy": copied - started, "merge": done - copied, "floor_seconds": done - started, "rows": inserted}


def floor_worker(source_dsn: str, floor_dsn: str) -> dict[str, float]:
    """One floor measurement (bench.py runs it in a worker process of its own, like every
    scenario: the rows it holds, 250 MB at 1,000,000, do not stay in the driver)."""
    return floor_once(floor_dsn, mapped_rows(source_dsn))


def measure_floor(bench: Any, size: int, *, repeat: int | None = None) -> dict[str, Any]:
    """``repeat`` pairs (5 up to 100,000 customers, 3 above), each crmsync's full pull into the emptied table (the worker of scenario 1)
    then the floor of the rows it stored, back to back: this machine's speed drifts by a third
    from one minute to the next, so each ratio compares two runs made moments apart. The table
    is left as the last pull filled it."""
    pairs = []
    for _ in range(repeat or (5 if size <= 100_000 else 3)):
        bench.sql("bench", "TRUNCATE sumit_customers, crm_sync_runs, crm_sync_errors, crm_sync_conflicts")
        pull = bench.run_worker("crmsync", "pull", "bench")
        if pull["rows_written"] != size:
            raise RuntimeError(f"floor pairs: the full pull wrote {pull['rows_written']} rows, expected {size}")
        floor = bench.run_worker("floor", "floor", "floor", source=bench.dsn("bench"))
        pairs.append((pull["seconds"], floor))
    ratios = sorted(pull / floor["floor_seconds"] for pull, floor in pairs)
    middle = sorted(pairs, key=lambda pair: pair[0] / pair[1]["floor_seconds"])[len(pairs) // 2]
    return {"size": size, "ratio": ratios[len(ratios) // 2], "ratios": ratios, "pull": middle[0],
            "seconds": middle[1]["floor_seconds"], "copy": middle[1]["copy"], "merge": middle[1]["merge"]}


def floor_line(floor: dict[str, Any], goal: float) -> str:
    return (f"Database floor for {floor['size']:,} customers (binary COPY into a staging table + one INSERT ... ON "
            f"CONFLICT into an emptied sumit_customers with the project's schema, indexes and journal triggers, "
            f"committed): {floor['seconds']:.2f} s (COPY {floor['copy']:.2f} s, merge {floor['merge']:.2f} s); "
            f"crmsync's full pull just before it {floor['pull']:.2f} s: **{floor['ratio']:.2f}x the floor** (goal: at "
            f"most {goal:.1f}x; median of {len(floor['ratios'])} pairs, each pull then floor back to back: "
            f"{', '.join(f'{r:.2f}x' for r in floor['ratios'])}).")
