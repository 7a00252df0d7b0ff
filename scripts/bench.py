"""`make bench`: crmsync's real pull and push code against real PostgreSQL and the sandbox over HTTP.

For each size (default 10,000 and 100,000 CRM customers; ``--million`` adds 1,000,000) the
sandbox is seeded with that many sample customers and these scenarios run:

1. full pull into an empty table;
2. re-pull when nothing changed, then after 1% of the customers changed in the CRM (their phone
   edited there), and the line comparing both with the full pull (the two re-pulls: the median
   of three such pairs, back to back);
3. bidirectional run when nothing changed (must push nothing);
4. bidirectional run after 1% of the rows changed locally (must push exactly those);
5. push of 10,000 changed customers with 20 ms of sandbox latency per call (once);
6. push of 200 changed customers against a sandbox that answers 429 (Retry-After: 1) beyond 5
   requests a second (once): throughput against the limit, the share of 429s, failures
   (``--rate-limit-only`` runs just this one, after a pull that fills the table);
7. the console (scripts/bench_console.py: every Customers view — first page, each sync-state
   filter, searches by a common word, a whole name, e-mail, phone, local id and CRM id — and
   the Runs, Errors, Conflicts and Matches pages; the searches again with the optional indexes
   of ``crmsync search-index``) on the largest table up to 100,000, and on a table of
   1,000,000 written by SQL (``--console-only`` runs just the latter);
8. full pull into an empty table with 250 ms of sandbox latency per listing call, on the largest
   size up to 100,000: one page at a time (read_concurrency 1), then with the connection's
   read_concurrency (default 8), side by side (``--latency-pull-only`` runs just this one);
9. adoption, on the largest size up to 100,000 (N): a table of N local customers none linked,
   half of them the CRM's own (same e-mail and tax id), the other half local only; the first
   pull matches (links N/2, inserts the CRM's other N/2), in pairs with a full pull into an empty
   table just before (median of 3 pairs; goal: at most ADOPTION_GOAL times it;
   ``--matching-only`` runs just this one).

After scenario 1, at the largest size up to 100,000 and at the largest size, it measures the
database floor (scripts/bench_floor.py: what PostgreSQL alone needs to store the same rows) in
pairs with a full pull just before each, and prints the ratio (goal: at most FLOOR_GOAL); at
the largest size up to 100,000 also what the search costs a full pull (five alternated rounds:
without the search rows of crm_sync_customer_search, with them, and with the optional trigram
indexes too).
``--pull-only`` runs scenarios 1 and 2 with the floor and the breakdown, ``--push-only``
scenario 5.

Each scenario runs the DAG tasks' own code (``SumitHook`` + ``CustomerStore`` +
``crmsync.flows``, the ``sumit_default`` connection read from the environment as a task
reads it) in a fresh worker process, so the peak memory printed is that run's alone;
``--operator-path`` runs them as the operators do (the store's connection from Airflow's
PostgresHook, the writer lock held), ``--profile rest`` under SUMIT's REST API. Each also runs
a naive reference written here — the whole list fetched into memory, then per row a SELECT, a
comparison, and a write (committed) only for a new or changed row; one push at a time — on a
second database, and the table prints the ratio. The naive push at 20 ms latency is timed on ``--naive-push-sample``
customers and scaled to the full count (marked ``*``): sequential calls cost the same each.

Prints a Markdown table; ``--output FILE`` also writes it there (docs/performance.md is one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from bench_floor import floor_line, floor_worker, measure_floor  # noqa: E402 - scripts/, beside this file
from bench_naive import COMPANY_ID, NAIVE, naive_credentials  # noqa: E402

CHANGED_SHARE = 100  # scenario 4 edits one row in this many
PUSH_COUNT = 10_000
PUSH_LATENCY_MS = 20
RATE_LIMIT = 5  # scenario 6: requests per second the sandbox accepts
RATE_LIMITED_PUSHES = 200
LISTING_LATENCY_MS = 250  # scenario 8: per listing call
ADOPTION_GOAL = 1.3  # scenario 9: the first pull that links half of the table, at most this many full pulls
FLOOR_GOAL = 1.5  # issue 30 (2.0 before it); the full pull, at most this many times the database floor (scripts/bench_floor.py)
CONSOLE_SIZE = 1_000_000  # the console's second table (scripts/bench_console.py: written by SQL)
REPULL_GOAL = 0.5  # the re-pull with nothing changed, at most this many times the full pull
REPULL_CHANGED_GOAL = 1.1  # the re-pull after 1% changed in the CRM, at most this many times that


# -- the worker: one scenario in a fresh process -----------------------------------------------


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    import logging

    import psycopg

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    log = logging.getLogger("crmsync.bench")
    if spec["kind"] == "crmsync":  # imports (Airflow's SDK among them) are not the work measured
        from crmsync.flows import pull, push  # noqa: F401
        from crmsync.hooks.sumit import SumitHook  # noqa: F401
        if spec.get("operator_path"):
            from crmsync.operators import sync  # noqa: F401
    rss_after_imports = _peak_rss_mb()  # before any customer is read
    started, cpu_started = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {}
    if spec["kind"] == "crmsync":
        result = _run_crmsync(spec, log)
    elif spec["kind"] == "breakdown":
        result = breakdown(spec)
    elif spec["kind"] == "floor":
        result = floor_worker(spec["source"], spec["dsn"])
    else:
        with psycopg.connect(spec["dsn"], autocommit=True) as conn:
            result = NAIVE[spec["scenario"]](conn, spec)
    result["seconds"] = time.perf_counter() - started
    result["worker_cpu"] = time.process_time() - cpu_started
    result["peak_rss_mb"] = _peak_rss_mb()
    result["rss_after_imports_mb"] = rss_after_imports
    return result


def _run_crmsync(spec: dict[str, Any], log: Any) -> dict[str, Any]:
    import psycopg

    from crmsync.core.guard import GuardLimits
    from crmsync.db.store import CustomerStore, RunRef
    from crmsync.flows import pull, push
    from crmsync.hooks.sumit import SumitHook

    hook = SumitHook("sumit_default")
    # a run id of its own per run: the change journal keeps one row per customer per run
    run_id = f"{spec['scenario']}-{time.time_ns()}"
    if spec.get("operator_path"):  # as the operators do (crmsync.operators.sync.locked_store)
        from types import SimpleNamespace

        from crmsync.db.locking import application_name, customers_lock
        from crmsync.operators.sync import open_customer_store

        store = open_customer_store("crm_postgres", {"dag": SimpleNamespace(dag_id="bench"), "run_id": run_id},
                                    dry_run=False)
        locked: Any = customers_lock(store, holder=application_name("bench", run_id), timeout=60, log=log)
    else:
        store = CustomerStore(psycopg.connect(spec["dsn"]), RunRef("bench", run_id))
        locked = contextlib.nullcontext()
    counts = None
    db_cpu_before = _process_cpu_seconds(store.conn.info.backend_pid)
    try:
        with store, locked:
            if spec["scenario"] in ("pull", "bidirectional"):
                counts = pull.run_pull(hook, store, limits=GuardLimits(), log=log).counts  # as the DAGs run it
            if spec["scenario"] == "bidirectional":
                counts = counts.merge(push.run_push(hook, store, customer_ids=None, only_changed=True, retry_queue=True,
                                                    concurrency=hook.settings.push_concurrency, log=log))
            if spec["scenario"] == "push":
                counts = push.run_push(hook, store, customer_ids=spec["ids"], only_changed=False,
                                       concurrency=hook.settings.push_concurrency, log=log)
            db_cpu = _process_cpu_seconds(store.conn.info.backend_pid) - db_cpu_before
    finally:
        hook.close()
    return {"round_trips": store.round_trips, "pushed": counts.pushed, "failed": counts.failed,
            "fetched": counts.fetched, "db_cpu": db_cpu, "linked": counts.linked, "held": counts.held,
            "created": counts.created}


def _process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process on this machine, from /proc (Linux); 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def breakdown(spec: dict[str, Any]) -> dict[str, Any]:
    """Where a pull's time goes: the listing read four times, each time doing one step more."""
    import msgspec
    import requests

    from crmsync.db.store import encode_rows
    from crmsync.hooks.sumit import SumitHook

    session, body = requests.Session(), {"Credentials": naive_credentials(spec)}

    def pages(decode: bool) -> float:
        started, start = time.perf_counter(), 0
        while True:
            response = session.post(spec["url"] + "/website/customers/getlist/",
                                    json={**body, "Paging": {"StartIndex": start, "PageSize": spec["page_size"]}})
            if not decode:
                start += spec["page_size"]
                if start >= spec["size"]:
                    return time.perf_counter() - started
                continue
            answer = msgspec.json.decode(response.content)  # as SumitHook decodes a listing
            start += len(answer["Customers"])
            if not answer.get("HasNextPage"):
                return time.perf_counter() - started

    hook = SumitHook("sumit_default")  # the driver runs this worker with read_concurrency 1: one step after another
    try:
        http, with_json = pages(decode=False), pages(decode=True)
        encoded = hashed = 0.0
        started = time.perf_counter()
        for page in hook.iter_customer_pages():
            before = time.perf_counter()
            page.hash_records(hook.record_salt)
            mapping = time.perf_counter()
            rows = page.rows  # the records mapped when first asked for
            before_encoding = time.perf_counter()
            encode_rows(rows)
            encoded += time.perf_counter() - before_encoding
            hashed += mapping - before
        listed = time.perf_counter() - started - encoded - hashed
    finally:
        hook.close()
    return {"http": http, "json": with_json - http, "hashing": hashed, "mapping": max(0.0, listed - with_json),
            "encoding": encoded}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# -- the driver ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, pg: Any, sandbox: Any, api_key: str, args: argparse.Namespace):
        self.pg, self.sandbox, self.api_key, self.args = pg, sandbox, api_key, args
        self.rows: list[dict[str, Any]] = []
        self.console_lines: list[str] = []
        self.over_bounds: list[str] = []  # figures over their bound: the bench prints everything, then fails

    def dsn(self, database: str) -> str:
        return f"host={self.pg.host} port={self.pg.port} dbname={database} user={self.pg.user}"

    def sql(self, database: str, query: str, params: Any = None) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def run_worker(self, kind: str, scenario: str, database: str, *, connection: dict[str, Any] | None = None,
                   **extra: Any) -> dict[str, Any]:
        spec = {"kind": kind, "scenario": scenario, "dsn": self.dsn(database), "url": self.sandbox.url,
                "api_key": self.api_key, **extra}
        env = dict(os.environ, PYTHONPATH=str(ROOT / "plugins"), AIRFLOW_CONN_SUMIT_DEFAULT=json.dumps({
            "conn_type": "sumit", "host": self.sandbox.url, "login": str(COMPANY_ID), "password": self.api_key,
            "extra": {"api_profile": self.args.profile, "customers_folder": "customers",
                      "page_size": self.args.page_size, "push_concurrency": self.args.push_concurrency,
                      "read_concurrency": self.args.read_concurrency, **(connection or {})}}))
        if kind == "crmsync" and self.args.operator_path:
            spec["operator_path"] = True
            env["AIRFLOW_CONN_CRM_POSTGRES"] = json.dumps({"conn_type": "postgres", "host": self.pg.host,
                                                           "port": self.pg.port, "login": self.pg.user,
                                                           "schema": database})
        # Every measured run starts as the floor's does (scripts/bench_floor.py): with the pages the
        # runs before it dirtied (a truncated table, the floor's own rows) written out, not written
        # by the checkpointer while it runs: a pull paid for the floor's writes before it, and the
        # floor never for the pull's (docs/performance.md, 2026-12-07, night).
        self.sql(database, "CHECKPOINT")
        before_xid = self.sql(database, "SELECT txid_current()")[0][0]
        requests_before = sum(self.sandbox.control.stats().values())
        result = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{kind} {scenario} failed:\n{result.stderr[-3000:]}")
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
        outcome["http_calls"] = sum(self.sandbox.control.stats().values()) - requests_before
        outcome["rows_written"] = self.sql(
            database, "SELECT count(*) FROM sumit_customers WHERE xmin::text::bigint > %s", [before_xid])[0][0]
        return outcome

    def scenario(self, size: int, number: int, title: str, scenario: str, *, expect_pushed: int | None = None,
                 naive_sample: int | None = None, **extra: Any) -> None:
        ours = self.run_worker("crmsync", scenario, "bench", **extra)
        if size > self.args.naive_max:  # the naive reference would take many minutes: skipped
            extra.pop("naive_ids", None)
            self._add(size, number, title, ours, None, False, expect_pushed)
            return
        naive_extra = dict(extra)
        if naive_sample is not None:
            naive_extra["ids"] = extra["naive_ids"][:naive_sample]
        naive_extra.pop("naive_ids", None)
        extra.pop("naive_ids", None)
        naive = self.run_worker("naive", scenario, "naive", **naive_extra)
        naive_seconds = naive["seconds"]
        if naive_sample is not None:
            naive_seconds *= len(extra["ids"]) / max(1, naive_sample)
        self._add(size, number, title, ours, naive_seconds, naive_sample is not None, expect_pushed)

    def _add(self, size: int, number: int, title: str, ours: dict[str, Any], naive_seconds: float | None,
             naive_scaled: bool, expect_pushed: int | None) -> None:
        if expect_pushed is not None and ours["pushed"] != expect_pushed:
            raise RuntimeError(f"{title}: crmsync pushed {ours['pushed']}, expected {expect_pushed}")
        customers = max(ours["fetched"], ours["pushed"], 1)
        row = {"size": size, "number": number, "title": title, "ours": ours, "naive_seconds": naive_seconds,
               "naive_scaled": naive_scaled, "customers": customers}
        self.rows.append(row)
        print(_format_row(row), flush=True)

    def run_size(self, size: int) -> None:
        if self.args.rate_limit_only and (self.rate_limit_line or size < RATE_LIMITED_PUSHES):
            return  # once, on the first size big enough
        for database in ("bench", "naive"):
            self.sql(database, "TRUNCATE sumit_customers, crm_sync_runs, crm_sync_errors, crm_sync_conflicts")
        if self.args.rate_limit_only:
            self.run_worker("crmsync", "pull", "bench")  # the customers scenario 6 pushes
            self.rate_limited_push(size)
            return
        if self.args.latency_pull_only:
            self.latency_bound_pull(size)
            return
        if self.args.push_only:
            self.run_worker("crmsync", "pull", "bench")  # the customers scenario 5 pushes
            self.latency_bound_push(size)
            return
        if self.args.matching_only:
            self.adoption(size)
            return
        self.scenario(size, 1, "full pull into an empty table", "pull")
        largest = size == max((s for s in self.sizes if s <= 100_000), default=None)
        if largest or size == max(self.sizes):
            self.floor_lines.append(floor_line(measure_floor(self, size), FLOOR_GOAL))
            print(self.floor_lines[-1], flush=True)
        if largest:
            self.search_index_cost(size)
        if largest and self.args.profile == "guide":
            self.breakdown_of = (size, self.rows[-1]["ours"],
                                 self.run_worker("breakdown", "pull", "bench", size=size, page_size=self.args.page_size,
                                                 connection={"read_concurrency": 1}))
        self.scenario(size, 2, "re-pull, nothing changed", "pull")
        self.repull_changed(size)
        if self.args.pull_only:
            return
        self.scenario(size, 3, "bidirectional, nothing changed", "bidirectional", expect_pushed=0)
        changed = f"UPDATE sumit_customers SET city = coalesce(city, '') || ' (edited)' WHERE id % {CHANGED_SHARE} = 0"
        for database in ("bench", "naive"):
            self.sql(database, changed)
        expected = self.sql("bench", f"SELECT count(*) FROM sumit_customers WHERE id % {CHANGED_SHARE} = 0")[0][0]
        self.scenario(size, 4, f"bidirectional, 1% changed locally ({expected:,})", "bidirectional",
                      expect_pushed=expected)
        self.latency_bound_push(size)
        self.rate_limited_push(size)
        if size == max((s for s in self.sizes if s <= 100_000), default=None):
            from bench_console import console_lines

            lines, over = console_lines(self.dsn("bench"), size)
            self.console_lines += lines
            self.over_bounds += over
            print("\n".join(lines), flush=True)
        self.latency_bound_pull(size)
        self.adoption(size)

    def search_index_cost(self, size: int, pairs: int = 5) -> None:
        """What the console's search costs a first pull: ``pairs`` alternated rounds of full pulls
        into the emptied table, each round without the search rows (their triggers disabled, as
        before crm_sync_customer_search), with them (the default), and with the optional trigram
        indexes of `crmsync search-index` on top (built on the empty table first, as they are
        kept). The table is left with its search rows and triggers, without the indexes."""
        import psycopg

        from crmsync.db import search_indexes

        kinds = ("no search rows", "search rows", "trigram indexes")
        seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
        trigger = "sumit_customers_search_inserted"
        with psycopg.connect(self.dsn("bench"), autocommit=True) as admin:
            try:
                for _ in range(pairs):
                    for kind in kinds:
                        self.sql("bench", "TRUNCATE sumit_customers, crm_sync_runs, crm_sync_errors, crm_sync_conflicts")
                        if kind == "no search rows":
                            admin.execute(f"ALTER TABLE sumit_customers DISABLE TRIGGER {trigger}")
                        if kind == "trigram indexes":
                            search_indexes.build(admin, log=lambda line: None)
                        seconds[kind].append(self.run_worker("crmsync", "pull", "bench")["seconds"])
                        admin.execute(f"ALTER TABLE sumit_customers ENABLE TRIGGER {trigger}")
                        search_indexes.drop(admin, log=lambda line: None)
            finally:
                admin.execute(f"ALTER TABLE sumit_customers ENABLE TRIGGER {trigger}")
                search_indexes.drop(admin, log=lambda line: None)
                admin.execute("SELECT crmsync_rebuild_customer_search()")

        def ratios(kind: str, base: str) -> str:
            return ", ".join(f"{r:.2f}x" for r in sorted(a / b for a, b in zip(seconds[kind], seconds[base])))

        median = {kind: statistics.median(values) for kind, values in seconds.items()}
        self.search_index_line = (
            f"The search's cost to a full pull of {size:,} (median of {pairs} alternated rounds): "
            f"{median['search rows']:.2f} s with the search rows (crm_sync_customer_search, the default) against "
            f"{median['no search rows']:.2f} s without them (ratios {ratios('search rows', 'no search rows')}); "
            f"{median['trigram indexes']:.2f} s with the optional trigram indexes of `crmsync search-index` too "
            f"(ratios to the default {ratios('trigram indexes', 'search rows')}).")
        print(self.search_index_line, flush=True)

    def repull_changed(self, size: int, pairs: int = 3) -> None:
        """2b. a re-pull after 1% of the customers changed in the CRM (someone edited their phone
        there), and the line comparing the re-pulls with the full pull. The ratio of the two
        re-pulls is the median of ``pairs`` pairs, each a re-pull with nothing changed then one
        after another 1% changed, back to back (one pair alone varied from 1.0x to 1.4x)."""
        edited_count = self.edit_one_percent(0)
        self.scenario(size, 2, f"re-pull, 1% changed in the CRM ({edited_count:,})", "pull")
        mine = [r["ours"] for r in self.rows if r["size"] == size]  # 1., 2., and this one
        full, same, edited = mine[0], mine[-2], mine[-1]
        if edited["rows_written"] < edited_count:
            raise RuntimeError(f"re-pull after 1% changed: wrote {edited['rows_written']}, expected {edited_count}")
        runs = [(same["seconds"], edited["seconds"])]
        for number in range(1, pairs):
            unchanged = self.run_worker("crmsync", "pull", "bench")
            self.edit_one_percent(number)
            changed = self.run_worker("crmsync", "pull", "bench")
            if unchanged["rows_written"] or changed["rows_written"] < edited_count:
                raise RuntimeError(f"re-pull pair {number + 1}: wrote {unchanged['rows_written']} with nothing changed "
                                   f"and {changed['rows_written']} after {edited_count} changed")
            runs.append((unchanged["seconds"], changed["seconds"]))
        if pairs > 1 and size <= self.args.naive_max:
            self.run_worker("naive", "pull", "naive")  # the naive reference's table takes the same changes
        ratios = sorted(b / a for a, b in runs)
        unchanged_median = statistics.median(a for a, _ in runs)
        self.repull_lines.append(
            f"Re-pull at {size:,}: nothing changed {unchanged_median:.2f} s (median of {len(runs)}), "
            f"{unchanged_median / full['seconds']:.2f}x the full pull's {full['seconds']:.2f} s (goal: at most "
            f"{REPULL_GOAL}x); 1% changed in the CRM {statistics.median(b for _, b in runs):.2f} s, "
            f"{statistics.median(ratios):.2f}x the re-pull with nothing changed (goal: at most {REPULL_CHANGED_GOAL}x; "
            f"median of {len(runs)} pairs, each a re-pull with nothing changed then one after 1% changed: "
            f"{', '.join(f'{r:.2f}x' for r in ratios)}).")
        print(self.repull_lines[-1], flush=True)

    def edit_one_percent(self, round_number: int) -> int:
        """Edit the phone of every CHANGED_SHARE-th customer in the sandbox (another number each
        round); how many."""
        changed = [{"CustomerID": sumit_id, "Phone": f"+9725{4 + round_number}{number:07d}"} for sumit_id, number
                   in self.sql("bench", f"SELECT sumit_customer_id, id FROM sumit_customers WHERE id % {CHANGED_SHARE} = 0")]
        for start in range(0, len(changed), 10_000):
            self.sandbox.control.edit(changed[start:start + 10_000])
        if not changed:
            raise RuntimeError("re-pull after 1% changed: no customer to edit")
        return len(changed)

    def latency_bound_push(self, size: int) -> None:
        """5. (once, at the first size with enough customers) push_count changed customers with
        PUSH_LATENCY_MS per call."""
        if size < self.args.push_count or self.pushed_once:
            return
        self.pushed_once = True
        edit = ("UPDATE sumit_customers SET phone = '+97250' || lpad(id::text, 7, '0') WHERE id IN "
                f"(SELECT id FROM sumit_customers ORDER BY id LIMIT {self.args.push_count}) RETURNING id")
        ids = sorted(r[0] for r in self.sql("bench", edit))
        naive_ids = sorted(r[0] for r in self.sql("naive", edit))
        self.sandbox.control.set_faults(latency_ms=PUSH_LATENCY_MS)
        try:
            self.scenario(size, 5, f"push {len(ids):,} changed, {PUSH_LATENCY_MS} ms latency", "push",
                          expect_pushed=len(ids), ids=ids, naive_ids=naive_ids,
                          naive_sample=self.args.naive_push_sample)
        finally:
            self.sandbox.control.set_faults(latency_ms=None)
        ours = next(row["ours"] for row in reversed(self.rows) if row["number"] == 5)
        # The pushers share one interpreter: its CPU time, steadier than the wall time on a noisy machine.
        self.push_line = (f"Scenario 5's worker process: {ours['worker_cpu']:.2f} s of CPU for {len(ids):,} pushes "
                          f"({ours['worker_cpu'] / max(1, len(ids)) * 1000:.2f} ms a push), {ours['seconds']:.2f} s wall time.")
        print(self.push_line, flush=True)

    def latency_bound_pull(self, size: int) -> None:
        """8. (once, at the largest size up to 100,000) a full pull into an empty table with
        LISTING_LATENCY_MS per listing call: read_concurrency 1, then the connection's."""
        if self.latency_line or size != max((s for s in self.sizes if s <= 100_000), default=None):
            return
        times = {}
        latency = self.args.listing_latency_ms
        self.sandbox.control.set_faults(latency_ms=latency or None)
        try:
            for concurrency in (1, self.args.read_concurrency):
                self.sql("bench", "TRUNCATE sumit_customers, crm_sync_runs, crm_sync_errors, crm_sync_conflicts")
                ours = self.run_worker("crmsync", "pull", "bench", connection={"read_concurrency": concurrency})
                if ours["fetched"] != size or ours["rows_written"] != size:
                    raise RuntimeError(f"latency-bound pull: fetched {ours['fetched']}, wrote {ours['rows_written']}")
                times[concurrency] = ours["seconds"]
                self._add(size, 8, f"full pull, {latency:g} ms per listing call, read_concurrency "
                                   f"{concurrency}", ours, None, False, None)
        finally:
            self.sandbox.control.set_faults(latency_ms=None)
        pages = -(-size // self.args.page_size)
        self.latency_line = (
            f"8. at {latency:g} ms per listing call ({pages} pages of {self.args.page_size:,}): one page at a "
            f"time {times[1]:.2f} s (latency alone: {pages * latency / 1000:.1f} s), read_concurrency "
            f"{self.args.read_concurrency} {times[self.args.read_concurrency]:.2f} s "
            f"({times[1] / times[self.args.read_concurrency]:.1f}x faster)")
        print(self.latency_line, flush=True)

    def adoption(self, size: int) -> None:
        """9. (once, at the largest size up to 100,000) the first pull of a company whose table and
        SUMIT both hold customers, half of them the same, against a full pull into an empty table."""
        if self.adoption_line or size != max((s for s in self.sizes if s <= 100_000), default=None):
            return
        reset = ("TRUNCATE sumit_customers, crm_sync_runs, crm_sync_errors, crm_sync_conflicts, crm_sync_changes, "
                 "crm_sync_created, crm_sync_matches, crm_sync_match_exclusions")
        # Every row unlinked, its bookkeeping gone; odd ids become customers SUMIT does not have.
        adopt = ("UPDATE sumit_customers SET sumit_customer_id = NULL, synced_fingerprint = NULL, crm_fingerprint = NULL,"
                 " crm_custom_fingerprint = NULL, synced_at = NULL, metadata = '{}',"
                 " email = CASE WHEN id % 2 = 1 THEN 'local-' || id || '@example.com' ELSE email END,"
                 " tax_id = CASE WHEN id % 2 = 1 THEN 'L' || id ELSE tax_id END")
        pairs = []
        for _ in range(3):
            self.sql("bench", reset)
            first = self.run_worker("crmsync", "pull", "bench")
            self.sql("bench", adopt)
            self.sql("bench", "TRUNCATE crm_sync_changes, crm_sync_created")
            self.sql("bench", "VACUUM ANALYZE sumit_customers")
            matched = self.run_worker("crmsync", "pull", "bench")
            total = self.sql("bench", "SELECT count(*) FROM sumit_customers")[0][0]
            pairs.append((matched["seconds"] / first["seconds"], first, matched, total))
        pairs.sort(key=lambda pair: pair[0])
        ratio, first, matched, total = pairs[len(pairs) // 2]
        self._add(size, 9, f"adoption: {size:,} local (none linked) + {size:,} CRM, half the same", matched, None,
                  False, None)
        verdict = "meets" if ratio <= ADOPTION_GOAL else "misses"
        self.adoption_line = (
            f"9. adoption at {size:,} + {size:,} customers, half the same people (by e-mail and tax id): the first "
            f"pull linked {matched['linked']:,}, inserted {matched['created']:,} and held {matched['held']:,} in "
            f"{matched['seconds']:.2f} s; a full pull into an empty table {first['seconds']:.2f} s; ratio "
            f"{ratio:.2f}x (median of 3 pairs: {', '.join(f'{r:.2f}' for r, *_ in pairs)}), {verdict} the goal "
            f"{ADOPTION_GOAL}x; the table then holds {total:,} rows (no twin)")
        print(self.adoption_line, flush=True)

    def rate_limited_push(self, size: int) -> None:
        """6. (once) RATE_LIMITED_PUSHES changed customers pushed against the sandbox's rate_limit."""
        if self.rate_limit_line or size < RATE_LIMITED_PUSHES:
            return
        edit = ("UPDATE sumit_customers SET email = 'rl' || id || '@example.co.il' WHERE id IN "
                f"(SELECT id FROM sumit_customers ORDER BY id LIMIT {RATE_LIMITED_PUSHES}) RETURNING id")
        ids = sorted(r[0] for r in self.sql("bench", edit))
        requests_before = len(self.sandbox.control.requests())
        self.sandbox.control.set_faults(rate_limit=RATE_LIMIT)
        try:
            ours = self.run_worker("crmsync", "push", "bench", ids=ids)
        finally:
            self.sandbox.control.set_faults(rate_limit=None)
        statuses = [r["status"] for r in self.sandbox.control.requests()[requests_before:]]
        self._add(size, 6, f"push {len(ids):,} at a {RATE_LIMIT} requests/s rate limit", ours, None, False, None)
        per_second = ours["pushed"] / ours["seconds"] if ours["seconds"] else 0
        self.rate_limit_line = (
            f"6. at a {RATE_LIMIT} requests/s rate limit: {ours['pushed']:,} pushed, {ours['failed']:,} failed in "
            f"{ours['seconds']:.1f} s ({len(ids) / RATE_LIMIT:.0f} s at the limit): {per_second:.2f} pushes/s, "
            f"{per_second / RATE_LIMIT:.0%} of the limit; {statuses.count(429):,} of {len(statuses):,} calls "
            f"({statuses.count(429) / max(1, len(statuses)):.1%}) answered 429")
        print(self.rate_limit_line, flush=True)

    pushed_once = False
    rate_limit_line = ""
    latency_line = ""
    push_line = ""
    adoption_line = ""
    search_index_line = ""
    floor_lines: list[str] = []
    repull_lines: list[str] = []
    sizes: list[int] = []
    breakdown_of: tuple[int, dict[str, Any], dict[str, Any]] | None = None

    def breakdown_lines(self) -> str:
        if not self.breakdown_of:
            return ""
        size, ours, parts = self.breakdown_of
        lines = [f"Where the {size:,}-customer full pull's {ours['seconds']:.2f} s go (the steps are timed alone; "
                 "in the run they overlap, the first five in the read-ahead thread):",
                 f"- SUMIT sandbox answering + HTTP transfer: {parts['http']:.2f} s",
                 f"- JSON decoding: {parts['json']:.2f} s",
                 f"- hashing each record as sent (what a re-pull compares): {parts['hashing']:.2f} s",
                 f"- mapping records to rows, with their fingerprints: {parts['mapping']:.2f} s",
                 f"- encoding the rows for PostgreSQL: {parts['encoding']:.2f} s",
                 f"- PostgreSQL (CPU time of the run's server process): {ours['db_cpu']:.2f} s",
                 f"- the worker process's CPU time (the steps above but PostgreSQL, and planning): "
                 f"{ours['worker_cpu']:.2f} s"]
        return "\n".join(lines)


def _format_row(row: dict[str, Any]) -> str:
    ours = row["ours"]
    per_second = row["customers"] / ours["seconds"] if ours["seconds"] else 0
    if row["naive_seconds"] is None:
        naive = ratio = "—"
    else:
        naive = f"{row['naive_seconds']:.2f} s" + ("*" if row["naive_scaled"] else "")
        ratio = f"{row['naive_seconds'] / ours['seconds']:.1f}x" if ours["seconds"] else "—"
    return (f"| {row['size']:,} | {row['number']}. {row['title']} | {ours['seconds']:.2f} s | {per_second:,.0f}/s "
            f"| {ours['peak_rss_mb']:.0f} MB ({ours['rss_after_imports_mb']:.0f}) | {ours['round_trips']:,} | {ours['http_calls']:,} | {ours['pushed']:,} "
            f"| {ours['rows_written']:,} | {naive} | {ratio} |")


HEADER = ("| customers | scenario | wall time | customers/s | peak RSS (after imports) | DB round trips | HTTP calls | pushed "
          "| rows written | naive | speed-up |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def machine(durable: bool = True) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))) / 1024 / 1024
    return (f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, Python {platform.python_version()}, "
            f"PostgreSQL 15 on loopback ({'fsync and synchronous_commit on' if durable else 'fsync off'}), "
            "sandbox over loopback HTTP")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated customer counts")
    parser.add_argument("--million", action="store_true", help="add a 1,000,000-customer round")
    parser.add_argument("--push-count", type=int, default=PUSH_COUNT)
    parser.add_argument("--rate-limit-only", action="store_true",
                        help=f"only scenario 6 (push {RATE_LIMITED_PUSHES} at a {RATE_LIMIT} requests/s rate limit)")
    parser.add_argument("--naive-push-sample", type=int, default=500,
                        help="customers the naive sequential push is timed on (then scaled)")
    parser.add_argument("--naive-max", type=int, default=100_000,
                        help="skip the naive reference above this many customers (it takes minutes)")
    parser.add_argument("--page-size", type=int, default=None, help="the connection's page_size extra")
    parser.add_argument("--push-concurrency", type=int, default=None, help="the connection's push_concurrency extra")
    parser.add_argument("--read-concurrency", type=int, default=None, help="the connection's read_concurrency extra")
    parser.add_argument("--profile", choices=("guide", "rest"), default="guide",
                        help="the API profile crmsync's runs use (the naive reference always reads the guide's)")
    parser.add_argument("--listing-latency-ms", type=float, default=LISTING_LATENCY_MS,
                        help="scenario 8's sandbox latency per listing call")
    parser.add_argument("--operator-path", action="store_true",
                        help="run crmsync's pulls and pushes as the operators do: the store's connection from "
                             "Airflow's PostgresHook (connection crm_postgres) and the writer lock held")
    parser.add_argument("--latency-pull-only", action="store_true",
                        help=f"only scenario 8 (full pull at {LISTING_LATENCY_MS} ms per listing call, sequential and "
                             "concurrent)")
    parser.add_argument("--push-only", action="store_true",
                        help=f"only scenario 5 (push --push-count customers at {PUSH_LATENCY_MS} ms per call)")
    parser.add_argument("--console-only", action="store_true",
                        help="only the console at 1,000,000 customers (a table written by SQL, no pulls)")
    parser.add_argument("--matching-only", action="store_true",
                        help="only scenario 9 (adoption: the first pull that links half of a populated table)")
    parser.add_argument("--pull-only", action="store_true",
                        help="only scenarios 1 and 2, the database floor and where the time goes")
    parser.add_argument("--no-fsync", action="store_true",
                        help="run PostgreSQL without fsync and synchronous commit (default: as in production)")
    parser.add_argument("--output", help="also write the table (Markdown) to this file")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    from crmsync.sumit.connection import SumitSettings

    args.page_size = args.page_size or SumitSettings.page_size
    args.push_concurrency = args.push_concurrency or SumitSettings.push_concurrency
    args.read_concurrency = args.read_concurrency or SumitSettings.read_concurrency
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([1_000_000] if args.million else [])

    from crmsync.testing.stack import LocalStack

    api_key = "bench-" + secrets.token_hex(12)
    print(f"crmsync benchmark on {machine(not args.no_fsync)}", flush=True)
    print(f"api_profile {args.profile}, page_size {args.page_size}, push_concurrency {args.push_concurrency}, "
          f"read_concurrency {args.read_concurrency}"
          + (", through the operator path (PostgresHook, writer lock)" if args.operator_path else "") + "\n",
          flush=True)
    with LocalStack(api_key=api_key, company_id=COMPANY_ID, durable=not args.no_fsync, databases=("bench", "naive", "floor", "console"),
                    sandbox=False) as stack:
        bench = Bench(stack.pg, None, api_key, args)
        bench.sizes = sizes
        for database in ("bench", "naive", "floor", "console"):
            stack.load_schema(database)
        print(HEADER, flush=True)
        for size in sizes if not args.console_only else ():
            # A sandbox per size, seeded at start (the fast path: a million in seconds).
            with stack.run_sandbox(seed_demo=size) as sandbox:
                bench.sandbox = sandbox
                bench.run_size(size)
        if args.console_only or not (args.pull_only or args.push_only or args.rate_limit_only or args.latency_pull_only
                                     or args.matching_only):
            from bench_console import console_lines

            lines, over = console_lines(bench.dsn("console"), CONSOLE_SIZE, build=True)
            bench.console_lines += lines
            bench.over_bounds += over
            print("\n".join(lines), flush=True)
    table = HEADER + "\n" + "\n".join(_format_row(r) for r in bench.rows)
    print("\n" + bench.breakdown_lines(), flush=True)
    table += "".join("\n\n" + line for line in bench.floor_lines)
    table += "".join("\n\n" + line for line in bench.repull_lines)
    table += f"\n\n{bench.search_index_line}" if bench.search_index_line else ""
    table += "\n\n" + bench.breakdown_lines() + (f"\n\n{bench.rate_limit_line}" if bench.rate_limit_line else "")
    table += f"\n\n{bench.latency_line}" if bench.latency_line else ""
    table += f"\n\n{bench.push_line}" if bench.push_line else ""
    table += f"\n\n{bench.adoption_line}" if bench.adoption_line else ""
    if bench.console_lines:
        table += "\n\n" + "\n".join(bench.console_lines)
    if args.output:
        Path(args.output).write_text(f"Machine: {machine(not args.no_fsync)}\n\n{table}\n", encoding="utf-8")
    if bench.over_bounds:
        print("\nmake bench failed: " + "; ".join(bench.over_bounds), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
