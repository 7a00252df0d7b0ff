"""Drive a running sandbox: a urllib client for its control API, and a subprocess launcher.

Stdlib only, so tests, the demo script and a shell session can use it without the project's
dependencies.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLUGINS_DIR = Path(__file__).resolve().parents[2]  # plugins/, where the crmsync package lives
LISTENING = "SUMIT sandbox listening on "
START_TIMEOUT_SECONDS = 15
STOP_TIMEOUT_SECONDS = 5
POLL_SECONDS = 0.05  # how often wait_for_deliveries asks


class SandboxControlError(RuntimeError):
    """The control API refused a call (bad knob, bad record); carries the sandbox's reason."""


class SandboxControl:
    """Client for ``/_sandbox/...``: ``SandboxControl(url).add_customers([{"Name": "A"}])``.

    ``cafile``: for an HTTPS sandbox, the PEM certificate to trust: its CA's, or the sandbox's
    own certificate (then trusted as it is, without its CA).
    """

    def __init__(self, base_url: str, timeout: float = 30, cafile: str | os.PathLike[str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.context = None if cafile is None else _trusting(cafile)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("ascii")  # escapes survive lone surrogates
        request = urllib.request.Request(self.base_url + "/_sandbox/" + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            with error:
                reason = error.read().decode("utf-8", "replace")
            try:
                reason = json.loads(reason)["error"]
            except (ValueError, KeyError, TypeError):
                pass
            raise SandboxControlError(f"{method} /_sandbox/{path}: HTTP {error.code}: {reason}") from None

    def reset(self, customers: list[dict[str, Any]] | None = None) -> list[Any]:
        """Empty the sandbox (customers, raw records, log, trigger deliveries; knobs back to the
        start-time ones; trigger subscriptions stay), then seed ``customers`` (posting no
        triggers); return their ids."""
        return self._call("POST", "reset", {"customers": customers or []})["ids"]

    def add_customers(self, customers: list[dict[str, Any]]) -> list[Any]:
        """Upsert: a record with a known CustomerID replaces that customer, others are created.
        Triggers: Create for a new customer, Update for a changed (or archived) one."""
        return self._call("POST", "customers", {"customers": customers})["ids"]

    def customers(self) -> list[dict[str, Any]]:
        """The customers listings show (archived ones are not: ``archived_ids``)."""
        return self._call("GET", "customers")["customers"]

    def archived_ids(self) -> list[Any]:
        return self._call("GET", "customers")["archived"]

    def edit(self, changes: list[dict[str, Any]]) -> int:
        """Change some keys of existing customers, as someone in the CRM would: each change is
        ``{"CustomerID": id, key: new value, ...}``; the keys left out stay. An unknown id
        changes nothing (SandboxControlError). Posts Update triggers; return how many
        customers changed."""
        return self._call("POST", "customers/edit", {"changes": changes})["edited"]

    def delete(self, ids: list[Any]) -> int:
        """Remove customers (unknown ids are ignored); posts Delete triggers; return how many."""
        return self._call("POST", "customers/delete", {"ids": ids})["deleted"]

    def archive(self, ids: list[Any]) -> int:
        """Archive customers: listings leave them out, getentity still finds them (marked
        ``IsArchived``); upserting one brings it back. Posts Archive triggers; return how many."""
        return self._call("POST", "customers/archive", {"ids": ids})["archived"]

    def triggers(self) -> dict[str, Any]:
        """``{"subscriptions": [...], "deliveries": [...], "pending": n}``: subscriptions with the
        URL's last path segment masked (``url_sha256`` matches a URL), deliveries with the
        receiver's ``scheme://host:port`` only."""
        return self._call("GET", "triggers")

    def clear_triggers(self) -> None:
        """Remove every trigger subscription, the queued posts and the delivery log."""
        self._call("POST", "triggers/clear", {})

    def wait_for_deliveries(self, timeout: float = 30) -> dict[str, Any]:
        """Wait until every queued trigger was delivered (or given up on); return ``triggers()``.
        TimeoutError when some are still pending after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.triggers()
            if report["pending"] == 0:
                return report
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{report['pending']} trigger deliveries still pending after {timeout} s")
            time.sleep(POLL_SECONDS)

    def add_raw(self, records: list[Any]) -> int:
        """Records getlist returns verbatim after the customers (hostile input); return their count."""
        return self._call("POST", "raw", {"records": records})["raw_records"]

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Merge knobs (``fail_next={"count": 2, "status": 503}``, ``latency_ms=50``, ...); a None
        value removes one. Returns all current knobs."""
        return self._call("POST", "faults", knobs)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("POST", "faults", {"reset": True})

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "faults")

    def requests(self) -> list[dict[str, Any]]:
        """API requests since the last reset: path, HTTP status (0: dropped), body with the key redacted."""
        return self._call("GET", "requests")["requests"]

    def sent(self) -> list[dict[str, Any]]:
        """API request bodies exactly as received, the API key included: only from a sandbox
        started with ``--keep-sent-bodies`` (tests scanning what a client sent), else empty."""
        return self._call("GET", "sent")["sent"]

    def stats(self) -> dict[str, int]:
        """API request count per path since the last reset."""
        return self._call("GET", "stats")


def _trusting(cafile: str | os.PathLike[str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=os.fspath(cafile))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a server certificate may be trusted by itself
    return context


@dataclass
class RunningSandbox:
    """A sandbox subprocess started by ``run_sandbox_process``."""

    url: str
    control: SandboxControl
    process: subprocess.Popen[str]
    stderr_lines: list[str]  # filled by a reader thread as lines arrive

    def stderr(self) -> str:
        """What the sandbox wrote to stderr so far (its request log)."""
        return "".join(list(self.stderr_lines))


def cli_arguments(options: dict[str, Any]) -> list[str]:
    """``{"company_id": 1000, "verbose": True}`` -> ``["--company-id=1000", "--verbose"]``: a value joined
    to its flag, so one that starts with a dash (an API key may) is never read as a flag."""
    arguments: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            arguments.append(flag)
        elif value is not None and value is not False:
            arguments.append(f"{flag}={value}")
    return arguments


@contextlib.contextmanager
def run_sandbox_process(port: int = 0, **cli_options: Any) -> Iterator[RunningSandbox]:
    """Run ``python -m crmsync.sandbox`` (options as CLI flags: ``seed_demo=120`` is
    ``--seed-demo 120``, ``verbose=True`` is ``--verbose``) until the block ends.

    A separate process, so the sandbox's stderr can be checked for secrets and it can be
    killed like a real server; SIGTERM first, SIGKILL after 5 s. With ``tls_cert`` and
    ``tls_key`` it serves HTTPS, and its ``control`` trusts that certificate.
    """
    command = [sys.executable, "-m", "crmsync.sandbox", "--port", str(port), *cli_arguments(cli_options)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGINS_DIR), env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               encoding="utf-8", env=env)
    stderr_lines: list[str] = []
    first_line: queue.Queue[str] = queue.Queue()
    readers = [threading.Thread(target=_collect, args=(process.stderr, stderr_lines), daemon=True),
               threading.Thread(target=_first_line_then_drain, args=(process.stdout, first_line), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        try:
            line, timed_out = first_line.get(timeout=START_TIMEOUT_SECONDS), False
        except queue.Empty:
            line, timed_out = "", True
        if not line.startswith(LISTENING):
            _stop(process)
            readers[0].join(timeout=1)
            why = f"not listening after {START_TIMEOUT_SECONDS} s" if timed_out else f"exit code {process.returncode}"
            raise RuntimeError(f"the SUMIT sandbox did not start ({why}); its stderr:\n"
                               + "".join(stderr_lines)[-4000:])
        url = line[len(LISTENING):].strip()
        control = SandboxControl(url, cafile=cli_options.get("tls_cert"))
        yield RunningSandbox(url=url, control=control, process=process, stderr_lines=stderr_lines)
    finally:
        _stop(process)
        for reader in readers:
            reader.join(timeout=1)
        for stream in (process.stdout, process.stderr):
            stream.close()


def _collect(stream: Any, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def _first_line_then_drain(stream: Any, first_line: queue.Queue[str]) -> None:
    first_line.put(stream.readline())
    for _ in stream:  # keep the pipe from filling, should the process print more
        pass


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
