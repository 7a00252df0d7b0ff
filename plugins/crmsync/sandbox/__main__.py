"""python -m crmsync.sandbox --port N: run the SUMIT sandbox until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from crmsync.sandbox.data import demo_customers
from crmsync.sandbox.server import SandboxHTTPServer, SandboxState


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crmsync.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--company-id", type=int, default=1000)
    parser.add_argument("--api-key", default="sandbox-key")
    parser.add_argument("--seed-demo", type=int, default=0, metavar="N", help="start with N sample customers")
    parser.add_argument("--seed-file", help="JSON list of guide-shaped customers to start with")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--status-style", choices=["string", "numeric"], default="string")
    parser.add_argument("--list-shape", choices=["top", "data"], default="top")
    parser.add_argument("--numeric-ids", action="store_true")
    parser.add_argument("--ignore-paging", action="store_true")
    parser.add_argument("--max-page-size", type=int, default=1000)
    parser.add_argument("--verbose", action="store_true", help="log request bodies (the API key redacted)")
    args = parser.parse_args(argv)

    state = SandboxState(company_id=args.company_id, api_key=args.api_key, status_style=args.status_style,
                         list_shape=args.list_shape, numeric_ids=args.numeric_ids, max_page_size=args.max_page_size,
                         latency_ms=args.latency_ms or None, ignore_paging=args.ignore_paging or None)
    for record in demo_customers(args.seed_demo):
        state.upsert(record)
    if args.seed_file:
        with open(args.seed_file, encoding="utf-8") as handle:
            for record in json.load(handle):
                state.upsert(record)

    httpd = SandboxHTTPServer((args.host, args.port), state, verbose=args.verbose)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    host, port = httpd.server_address[:2]
    print(f"SUMIT sandbox listening on http://{host}:{port}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
