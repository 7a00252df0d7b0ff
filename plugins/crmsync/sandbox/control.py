"""Drive a running sandbox: its control API (urllib), and a subprocess launcher."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLUGINS_DIR = Path(__file__).resolve().parents[2]


class SandboxControl:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read().decode("utf-8"))

    def reset(self, customers: list[dict] | None = None) -> list:
        return self._call("POST", "/_sandbox/reset", {"customers": customers or []})["ids"]

    def add_customers(self, customers: list[dict]) -> list:
        return self._call("POST", "/_sandbox/customers", {"customers": customers})["ids"]

    def customers(self) -> list[dict]:
        return self._call("GET", "/_sandbox/customers")["customers"]

    def delete(self, ids: list) -> None:
        self._call("POST", "/_sandbox/customers/delete", {"ids": ids})

    def add_raw(self, records: list) -> None:
        self._call("POST", "/_sandbox/raw", {"records": records})

    def set_faults(self, **knobs: Any) -> dict:
        return self._call("POST", "/_sandbox/faults", knobs)

    def clear_faults(self) -> dict:
        return self._call("POST", "/_sandbox/faults", {"reset": True})

    def requests(self) -> list[dict]:
        return self._call("GET", "/_sandbox/requests")["requests"]

    def stats(self) -> dict:
        return self._call("GET", "/_sandbox/stats")


@dataclass
class RunningSandbox:
    url: str
    control: SandboxControl
    process: subprocess.Popen
    stderr_lines: list[str]


@contextlib.contextmanager
def run_sandbox_process(port: int = 0, **options: Any) -> Iterator[RunningSandbox]:
    """Start ``python -m crmsync.sandbox`` with the given options (as CLI flags); stop it after."""
    command = [sys.executable, "-m", "crmsync.sandbox", "--port", str(port)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            command.append(flag)
        elif value not in (None, False):
            command += [flag, str(value)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGINS_DIR), env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stderr_lines: list[str] = []
    threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True).start()
    first_line: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: first_line.put(process.stdout.readline()), daemon=True).start()
    try:
        line = first_line.get(timeout=15)
    except queue.Empty:
        line = ""
    if "listening on" not in line:
        process.kill()
        process.wait()
        raise RuntimeError(f"the SUMIT sandbox did not start: {''.join(stderr_lines)[-2000:]}")
    url = line.strip().rsplit(" ", 1)[-1]
    try:
        yield RunningSandbox(url=url, control=SandboxControl(url), process=process, stderr_lines=stderr_lines)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
