"""python -m crmsync.sandbox --port N: run the SUMIT sandbox until SIGTERM or SIGINT.

Prints exactly one line to stdout, ``SUMIT sandbox listening on http://HOST:PORT`` (``https://``
with ``--tls-cert`` and ``--tls-key``), once it accepts connections (launchers wait for it;
``--port 0`` picks a free port), then one line per request to stderr.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from crmsync.sandbox.data import demo_customers
from crmsync.sandbox.server import SandboxServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crmsync.sandbox",
        description="A local HTTP(S) server imitating the SUMIT API in both profiles crmsync speaks: guide "
                    "(/website/customers/getlist/ and update/) and rest (/crm/data/listentities/, "
                    "/accounting/customers/create/ and update/, /crm/data/getentity/, the triggers' subscribe "
                    "and unsubscribe), plus a control API under /_sandbox/ (seed, edit, archive and delete "
                    "customers, which posts triggers; set faults; read the request and delivery logs).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--company-id", type=int, default=1000)
    parser.add_argument("--api-key", default="sandbox-key")
    parser.add_argument("--seed-demo", type=int, default=0, metavar="N", help="start with N sample customers")
    parser.add_argument("--seed-file", metavar="PATH",
                        help='start with these customers: a JSON list, or {"customers": [...]}')
    parser.add_argument("--latency-ms", type=float, default=0, help="delay before every API answer")
    parser.add_argument("--rate-limit", type=float, default=None, metavar="N",
                        help="answer API requests beyond N per second with HTTP 429 and Retry-After: 1, "
                             "without carrying them out (a burst of one second's worth passes)")
    parser.add_argument("--status-style", choices=["string", "numeric"], default="string",
                        help='guide profile: success/failure Status as "Success"/"GeneralError" or 0/1 '
                             '(the rest profile always says 0/1)')
    parser.add_argument("--list-shape", choices=["top", "data"], default="top",
                        help="getlist puts Customers at the top level or under Data")
    parser.add_argument("--numeric-ids", action="store_true", help="assign CustomerIDs as JSON numbers")
    parser.add_argument("--ignore-paging", action="store_true", help="getlist always answers everything")
    parser.add_argument("--max-page-size", type=int, default=1000)
    parser.add_argument("--customers-folder", default="customers",
                        help="rest profile: the customers folder id that listentities serves")
    parser.add_argument("--trigger-shape", choices=["object", "array", "alternate"], default=None,
                        help='how triggers post a change: the form field json holds {"Folder", "Type", '
                             '"EntityID"} (object, the default), [Folder, EntityID, Type, {properties}] '
                             '(array), or object and array in turn (alternate)')
    parser.add_argument("--verbose", action="store_true", help="also log request bodies (the API key redacted)")
    parser.add_argument("--keep-sent-bodies", action="store_true",
                        help="tests only: keep every API request body as received, key included, for "
                             "GET /_sandbox/sent (a secret scan of what the client sent); never with a real key")
    parser.add_argument("--tls-cert", metavar="PATH",
                        help="serve HTTPS with this PEM certificate (chain); needs --tls-key")
    parser.add_argument("--tls-key", metavar="PATH", help="the certificate's unencrypted PEM private key")
    return parser


def read_seed_file(path: str) -> list[Any]:
    """The customers in a seed file; ValueError (or OSError) with a readable reason otherwise."""
    with open(path, encoding="utf-8") as handle:
        content = json.load(handle)
    if isinstance(content, dict):
        content = content.get("customers")
    if not isinstance(content, list):
        raise ValueError('expected a JSON list of customers or {"customers": [...]}')
    return content


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together: give both or neither")
    seeds: list[Any] = []
    if args.seed_file:
        try:
            seeds = read_seed_file(args.seed_file)
        except (OSError, ValueError) as error:
            parser.error(f"--seed-file {args.seed_file}: {error}")
    knobs: dict[str, Any] = {}
    if args.latency_ms:
        knobs["latency_ms"] = args.latency_ms
    if args.ignore_paging:
        knobs["ignore_paging"] = True
    if args.rate_limit is not None:
        knobs["rate_limit"] = args.rate_limit
    if args.trigger_shape is not None:
        knobs["trigger_shape"] = args.trigger_shape
    try:
        server = SandboxServer(args.host, args.port, args.company_id, args.api_key, verbose=args.verbose,
                               status_style=args.status_style, list_shape=args.list_shape,
                               numeric_ids=args.numeric_ids, max_page_size=args.max_page_size,
                               customers_folder=args.customers_folder, tls_cert=args.tls_cert,
                               tls_key=args.tls_key, keep_sent_bodies=args.keep_sent_bodies, **knobs)
    except OSError as error:
        parser.exit(1, f"cannot listen on {args.host}:{args.port}: {error.strerror or error}\n")
    except ValueError as error:
        parser.error(str(error))
    try:
        server.state.add_customers(demo_customers(args.seed_demo))
        server.state.add_customers(seeds)
    except ValueError as error:
        server.stop()
        parser.error(f"--seed-file {args.seed_file}: {error}")

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    print(f"SUMIT sandbox listening on {server.url}", flush=True)
    stopping.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
