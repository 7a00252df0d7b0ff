"""A throwaway PostgreSQL server on loopback, from the initdb/pg_ctl on PATH, or else from
the newest Debian server package (/usr/lib/postgresql/<version>/bin). ``scripts/system-deps.sh``
installs Debian's ``postgresql`` when neither has them, and looks in the same places.

PostgreSQL refuses to run as root; when we are root the server runs as the ``postgres``
user (or ``nobody``) through ``runuser``, in a private temporary directory.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


# Under pytest-xdist each worker (PYTEST_XDIST_WORKER=gw0, gw1, ...) hands out ports from its own
# block, below the kernel's ephemeral range (32768 and up): a port one worker picked and has not
# bound yet is then neither another worker's pick nor the source port of someone's connection.
XDIST_PORT_BASE, XDIST_PORT_BLOCK, XDIST_PORT_BLOCKS = 10_000, 1_000, 20
_handed_out: set[int] = set()  # never the same port twice from one process (a server may not be up yet)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    candidates = [0]  # the kernel's pick
    if worker.startswith("gw") and worker[2:].isdigit():
        start = XDIST_PORT_BASE + XDIST_PORT_BLOCK * (int(worker[2:]) % XDIST_PORT_BLOCKS)
        offset = random.randrange(XDIST_PORT_BLOCK)  # another suite running at the same time starts elsewhere
        candidates = [start + (offset + i) % XDIST_PORT_BLOCK for i in range(XDIST_PORT_BLOCK)] + candidates
    for port in candidates:
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        _handed_out.add(port)
        return port
    raise RuntimeError("no free TCP port on 127.0.0.1")


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as")


DEBIAN_SERVERS = Path("/usr/lib/postgresql")  # Debian's postgresql-<version>: <version>/bin/initdb
INSTALL_HINT = ("run `sudo apt-get install --no-install-recommends postgresql` (Debian, Ubuntu; as root, "
                "`bash scripts/system-deps.sh postgres` does it, and `make demo` / `make test` run that), "
                "or put the folder holding initdb and pg_ctl on PATH")


class PostgresNotFound(RuntimeError):
    """No initdb/pg_ctl on this machine; the message says what to install."""


def _version(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in bin_dir.parent.name.split(".") if part.isdigit())


def _binary(name: str) -> str:
    """``initdb``/``pg_ctl``: from PATH when both are there, else from the newest Debian server."""
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return shutil.which(name)
    servers = [d for d in DEBIAN_SERVERS.glob("*/bin") if (d / "initdb").is_file() and (d / "pg_ctl").is_file()]
    if servers:
        return str(max(servers, key=_version) / name)
    raise PostgresNotFound("PostgreSQL's initdb and pg_ctl are neither on PATH nor in "
                           f"{DEBIAN_SERVERS}/<version>/bin: {INSTALL_HINT}")


class LocalPostgres:
    """``with LocalPostgres() as pg: pg.dsn`` — a fresh cluster with database ``customers``."""

    def __init__(self, *, port: int | None = None, dbname: str = "customers", user: str = "crmsync",
                 durable: bool = False):
        self.port = port or free_port()
        self.durable = durable  # fsync and synchronous commit on, as in production (the benchmark)
        self.dbname = dbname
        self.user = user
        self.host = "127.0.0.1"
        self._run_as = _server_user()
        self.base = Path(tempfile.mkdtemp(prefix="crmsync-pg-"))
        self.data_dir = self.base / "data"
        self.log_file = self.base / "server.log"

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} dbname={self.dbname} user={self.user}"

    def airflow_conn(self) -> dict:
        return {"conn_type": "postgres", "host": self.host, "port": self.port, "login": self.user, "schema": self.dbname}

    def _run(self, *args: str) -> None:
        command = list(args)
        if self._run_as:
            command = ["runuser", "-u", self._run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stderr.strip()}\n{log}")

    def start(self) -> "LocalPostgres":
        if self._run_as:
            shutil.chown(self.base, user=self._run_as)
        os.chmod(self.base, 0o700)
        self._run(_binary("initdb"), "-D", str(self.data_dir), "-U", self.user, "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        options = f"-p {self.port} -k {self.base} -c listen_addresses={self.host} -c max_connections=100"
        if not self.durable:  # tests: a crash may lose the cluster, which is thrown away anyway
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(_binary("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options, "-w", "start")
        with psycopg.connect(f"host={self.host} port={self.port} dbname=postgres user={self.user}", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        return self

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.dsn, **kwargs)

    def restart(self) -> None:
        """Fast restart: every session is cut, the server comes back on the same port.

        ``pg_ctl restart`` has no ``-l``: the new server inherits pg_ctl's stdout and stderr,
        so they go to the server log, not to pipes whose end would never come.
        """
        command = [_binary("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "restart"]
        if self._run_as:
            command = ["runuser", "-u", self._run_as, "--", *command]
        with open(self.log_file, "a", encoding="utf-8") as log:
            result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl restart failed (exit {result.returncode}); see {self.log_file}")

    def stop(self) -> None:
        if self.data_dir.exists():
            try:
                self._run(_binary("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
            except RuntimeError:
                pass  # already stopped
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "LocalPostgres":
        try:
            return self.start()
        except BaseException:
            self.stop()  # the temporary directory, and a server that started half way
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")
