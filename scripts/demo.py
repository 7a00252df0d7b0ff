"""`make demo`: crm_bidirectional_sync end to end on a throwaway PostgreSQL and the SUMIT sandbox.

Starts both, seeds the sandbox with sample customers (Hebrew ones among them) and the
table with a few local-only customers, runs the DAG through `airflow dags test`, prints the
run summary from crm_sync_runs, and stops everything it started.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from crmsync.testing.airflow_env import migrate  # noqa: E402
from crmsync.testing.postgres import PostgresNotFound  # noqa: E402
from crmsync.testing.stack import COMPANY_ID, LOCAL_ONLY, LocalStack  # noqa: E402

# A crmsync task's log line: "<time> [info     ] <message> [airflow.task.operators.crmsync...] loc=..."
TASK_LOG = re.compile(r"\[(?P<level>info|warning|error)\s*\]\s*(?P<message>.*?)\s*\[airflow\.task\.operators\.crmsync")
CRM_CUSTOMERS = 120


def main() -> int:
    api_key = "demo-" + secrets.token_hex(12)  # never printed
    print("crmsync demo: starting PostgreSQL and the SUMIT sandbox ...", flush=True)
    try:
        stack = LocalStack(api_key=api_key, company_id=COMPANY_ID, seed_demo=CRM_CUSTOMERS,
                           local_customers=True).start()
    except PostgresNotFound as error:
        print(f"make demo: {error}", file=sys.stderr)
        return 1
    with stack, tempfile.TemporaryDirectory(prefix="crmsync-demo-airflow-") as home:
        pg, sandbox = stack.pg, stack.sandbox
        print(f"  PostgreSQL on 127.0.0.1:{pg.port}, {len(LOCAL_ONLY)} local-only customers")
        print(f"  SUMIT sandbox at {sandbox.url}, {CRM_CUSTOMERS} CRM customers")
        # Adoption: a customer both sides hold already, spelled apart (e-mail in capitals, no city
        # locally): the sync links it instead of creating a twin.
        crm = sandbox.control.customers()
        emails = [str(c.get("Email") or "").lower() for c in crm]
        known = next(c for c, e in zip(crm, emails) if e and emails.count(e) == 1)
        with pg.connect() as conn:
            conn.execute("INSERT INTO sumit_customers (name, email) VALUES (%s, %s)",
                         (known["Name"], known["Email"].upper()))
        print(f"  1 local customer SUMIT holds too ({known['Email'].upper()}): linked, not duplicated")
        env = stack.airflow_env(home, CRMSYNC_TASK_RETRIES="0")
        print("  preparing a throwaway Airflow metadata database ...", flush=True)
        migrate(env)
        print("Running: airflow dags test crm_bidirectional_sync\n", flush=True)
        result = subprocess.run([sys.executable, "-m", "airflow", "dags", "test", "crm_bidirectional_sync"],
                                env=env, capture_output=True, text=True)
        output = stack.redact(result.stdout + result.stderr)
        for line in output.splitlines():
            match = TASK_LOG.search(line)
            if match:
                print(f"  {match['level']:<7} {match['message']}")
        with pg.connect() as conn:
            run = conn.execute(
                "SELECT operation, status, fetched, created, updated, unchanged, skipped, pushed, failed,"
                " conflicts, changed, linked, held, message FROM crm_sync_runs ORDER BY id DESC LIMIT 1").fetchone()
            total = conn.execute("SELECT count(*), count(sumit_customer_id) FROM sumit_customers").fetchone()
            hebrew = conn.execute(
                "SELECT id, name, city, tax_id FROM sumit_customers WHERE name ~ '[א-ת]' ORDER BY id LIMIT 3").fetchall()
        print("\nRun summary (crm_sync_runs):")
        if run:
            keys = ["operation", "status", "fetched", "created", "updated", "unchanged", "skipped", "pushed",
                    "failed", "conflicts", "changed", "linked", "held"]
            print("  " + json.dumps(dict(zip(keys, run[:13])), ensure_ascii=False))
            print("  " + run[13].split("; ")[0])
        else:
            print("  no run row was written; see the output above")
        print(f"sumit_customers: {total[0]} rows, {total[1]} linked to SUMIT; sandbox holds {len(sandbox.control.customers())}")
        for row in hebrew:
            print(f"  {row[0]}: {row[1]} | {row[2]} | tax id {row[3]}")
        print("Stopping PostgreSQL and the sandbox.")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
