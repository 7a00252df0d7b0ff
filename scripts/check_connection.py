"""`make check-connection`: one read-only call to SUMIT with the sumit_default connection.

Reads the connection the way the DAGs do (AIRFLOW_CONN_SUMIT_DEFAULT, or the metadata
database of AIRFLOW_HOME), asks SUMIT for a one-customer page, and says plainly what is
wrong if that fails. Never prints the API key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conn-id", default="sumit_default")
    args = parser.parse_args(argv)

    from crmsync.core.errors import CrmSyncError
    from crmsync.hooks.sumit import SumitHook

    hook = SumitHook(args.conn_id)
    try:
        settings = hook.settings
    except CrmSyncError as exc:
        print(f"FAILED: {exc}")
        return 1
    except Exception as exc:  # e.g. the connection is not defined at all
        print(f"FAILED: cannot read Airflow connection {args.conn_id!r}: {exc}")
        return 1
    print(f"Checking {settings.base_url} as CompanyID {settings.company_id} (profile {settings.api_profile}"
          + (f", folder {settings.customers_folder}" if settings.customers_folder else "") + ") ...")
    ok, message = hook.test_connection()
    print(("OK: " if ok else "FAILED: ") + message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
