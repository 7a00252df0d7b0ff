"""One local stack for ``make demo``, ``make airflow``, ``make bench`` and the tests: a throwaway
PostgreSQL, the SUMIT sandbox, crmsync's schema with a few local-only customers, a Redis for
Celery's broker when asked, and the Airflow environment pointed at them.

Each caller asks for the parts it needs; a new part (a Celery broker, a UI plugin's setting)
is added here once::

    with LocalStack(api_key=key, seed_demo=120, local_customers=True) as stack:
        env = stack.airflow_env(home, CRMSYNC_TASK_RETRIES="0")
        ... stack.pg, stack.sandbox, stack.redact(output) ...

PostgreSQL comes from ``LocalPostgres`` (initdb/pg_ctl on PATH or Debian's server package;
``scripts/system-deps.sh`` installs that one when neither is there), Redis from the
``redis-server`` on PATH (Debian's ``redis-server``, which ``scripts/system-deps.sh`` installs).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crmsync.db import sql
from crmsync.testing.airflow_env import airflow_env, sumit_connection
from crmsync.testing.postgres import LocalPostgres, free_port

COMPANY_ID = 1000
METADATA_DATABASE = "airflow"  # Airflow's metadata, next to the customers database (airflow_env(metadata="postgres"))
# Local customers the SUMIT sandbox does not have yet: something to push.
LOCAL_ONLY = [
    ("מאפיית השכונה בע\"מ", "bakery@example.co.il", "+972501112233", "תל אביב"),
    ("Galil Software Ltd", "office@galil.example", "04-8123456", "Haifa"),
    ("יוסי כהן", "yossi@example.co.il", "0529998877", "ירושלים"),
]
# A Celery worker's name for the task instances it runs (see worker_hostname).
WORKER_HOSTNAME_ENV = "CRMSYNC_WORKER_HOSTNAME"
REDIS_START_TIMEOUT_SECONDS = 15
REDIS_INSTALL_HINT = ("run `sudo apt-get install --no-install-recommends redis-server` (as root, "
                      "`bash scripts/system-deps.sh` does it, and `make test` runs that)")


def worker_hostname() -> str:
    """``[core] hostname_callable`` of a local Celery worker: its own name, not the machine's.

    Airflow records the host a task ran on (``task_instance.hostname``) through this callable,
    by default the machine's FQDN, which every worker on one machine shares. Each local worker
    gets its Celery node name (``worker1@host``) in ``CRMSYNC_WORKER_HOSTNAME``, so a task
    instance says which worker ran it, as it would with one worker per host.
    """
    return os.environ.get(WORKER_HOSTNAME_ENV) or socket.getfqdn()


class LocalRedis:
    """``with LocalRedis() as redis: redis.url`` — a throwaway Redis on 127.0.0.1 (Celery's broker).

    Nothing is persisted (``--save '' --appendonly no``); its working directory and log are a
    temporary directory, removed at the end.
    """

    def __init__(self, *, port: int | None = None):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.base = Path(tempfile.mkdtemp(prefix="crmsync-redis-"))
        self.log_file = self.base / "redis.log"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> "LocalRedis":
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(f"redis-server is not on PATH: {REDIS_INSTALL_HINT}")
        self._process = subprocess.Popen(
            [binary, "--bind", self.host, "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.base), "--logfile", str(self.log_file), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
        while not self.ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                why = (f"exit code {self._process.returncode}" if self._process.poll() is not None
                       else f"no PONG after {REDIS_START_TIMEOUT_SECONDS} s")
                log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
                self.stop()
                raise RuntimeError(f"redis-server did not start ({why}):\n{log}")
            time.sleep(0.1)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM (Redis exits at once: nothing to save), SIGKILL after 5 s; the directory goes. Safe twice."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "LocalRedis":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalStack:
    """PostgreSQL and the sandbox for one block; everything started is stopped, in reverse.

    ``start()`` (or ``with``) starts the parts asked for: PostgreSQL (``postgres``; ``durable``
    keeps fsync on; ``databases`` are created next to ``customers``), crmsync's schema in
    ``customers`` (``schema``) with the ``LOCAL_ONLY`` customers (``local_customers``, which
    implies the schema), the sandbox (``sandbox``; ``seed_demo`` sample customers, other
    ``python -m crmsync.sandbox`` flags in ``sandbox_options``, e.g. ``{"verbose": True}``)
    and Redis, Celery's broker (``redis``). A part not started then starts on
    ``start_postgres()`` / ``start_sandbox()`` / ``start_redis()``.
    ``api_key`` (the sandbox's; a random one by default) is never printed: ``redact`` hides it.
    """

    def __init__(self, *, api_key: str | None = None, company_id: int = COMPANY_ID, postgres: bool = True,
                 durable: bool = False, databases: Sequence[str] = (), schema: bool = False,
                 local_customers: bool = False, sandbox: bool = True, seed_demo: int | None = None,
                 sandbox_options: dict[str, Any] | None = None, redis: bool = False):
        self.api_key = api_key or "local-" + secrets.token_hex(16)
        self.company_id = company_id
        self._postgres, self._durable, self._databases = postgres, durable, tuple(databases)
        self._schema, self._local_customers = schema or local_customers, local_customers
        self._sandbox, self._redis = sandbox, redis
        self._sandbox_options = {**({"seed_demo": seed_demo} if seed_demo else {}), **(sandbox_options or {})}
        self._parts = contextlib.ExitStack()
        self._pg: LocalPostgres | None = None
        self._running_sandbox = None  # crmsync.sandbox's RunningSandbox: url, control, stderr()
        self._running_redis: LocalRedis | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> "LocalStack":
        try:
            if self._postgres:
                self.start_postgres()
            if self._sandbox:
                self.start_sandbox()
            if self._redis:
                self.start_redis()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop what was started, in reverse (Redis, the sandbox, then PostgreSQL). Safe twice."""
        self._parts.close()
        self._pg = self._running_sandbox = self._running_redis = None

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- parts ---------------------------------------------------------------------------
    def start_postgres(self) -> LocalPostgres:
        """A fresh cluster with ``customers`` (and ``databases``), the schema and local customers as asked."""
        if self._pg is None:
            self._pg = self._parts.enter_context(LocalPostgres(durable=self._durable))
            for name in self._databases:
                self.create_database(name)
            if self._schema:
                self.load_schema()
            if self._local_customers:
                self.seed_local_customers()
        return self._pg

    def start_sandbox(self) -> Any:
        """The SUMIT sandbox as a separate process, until the stack stops."""
        if self._running_sandbox is None:
            self._running_sandbox = self._parts.enter_context(self.run_sandbox(**self._sandbox_options))
        return self._running_sandbox

    def start_redis(self) -> LocalRedis:
        """Redis on 127.0.0.1 (Celery's broker), until the stack stops."""
        if self._running_redis is None:
            self._running_redis = self._parts.enter_context(LocalRedis())
        return self._running_redis

    def run_sandbox(self, **options: Any) -> contextlib.AbstractContextManager:
        """Another sandbox with this stack's CompanyID and key, for a block of the caller's
        (``with stack.run_sandbox(seed_demo=10_000) as sandbox``); flags as ``run_sandbox_process``."""
        from crmsync.sandbox.control import run_sandbox_process

        return run_sandbox_process(company_id=self.company_id, api_key=self.api_key, **options)

    @property
    def pg(self) -> LocalPostgres:
        if self._pg is None:
            raise RuntimeError("this LocalStack's PostgreSQL is not started (start_postgres())")
        return self._pg

    @property
    def redis(self) -> LocalRedis:
        if self._running_redis is None:
            raise RuntimeError("this LocalStack's Redis is not started (start_redis())")
        return self._running_redis

    @property
    def sandbox(self) -> Any:
        if self._running_sandbox is None:
            raise RuntimeError("this LocalStack's sandbox is not started (start_sandbox())")
        return self._running_sandbox

    # -- the database --------------------------------------------------------------------
    def create_database(self, name: str) -> None:
        with self.pg.connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def load_schema(self, dbname: str | None = None) -> None:
        """crmsync's tables (include/sql/schema.sql; idempotent) in ``customers`` or ``dbname``."""
        with self.pg.connect(**({"dbname": dbname} if dbname else {})) as conn:
            conn.execute(sql.load("schema"))

    def seed_local_customers(self, customers: Sequence[tuple[str, str, str, str]] = LOCAL_ONLY) -> list[int]:
        """Insert (name, email, phone, city) rows into sumit_customers; their ids."""
        with self.pg.connect() as conn:
            return [conn.execute("INSERT INTO sumit_customers (name, email, phone, city) VALUES (%s, %s, %s, %s)"
                                 " RETURNING id", customer).fetchone()[0] for customer in customers]

    def metadata_database_url(self) -> str:
        """Airflow's metadata database on this PostgreSQL (created on first call), as SQLAlchemy's URL."""
        pg = self.pg
        with pg.connect(autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (METADATA_DATABASE,)).fetchone()
        if not exists:
            self.create_database(METADATA_DATABASE)
        return f"postgresql+psycopg2://{pg.user}@{pg.host}:{pg.port}/{METADATA_DATABASE}"

    # -- Airflow -------------------------------------------------------------------------
    def sumit_conn(self, **extra: object) -> str:
        """``AIRFLOW_CONN_SUMIT_DEFAULT`` for the sandbox (``guide`` profile unless ``api_profile``)."""
        return sumit_connection(self.sandbox.url, self.company_id, self.api_key, **extra)

    def airflow_env(self, home: Path | str, *, metadata: str = "sqlite", isolated: bool = False,
                    celery: bool = False, sumit_extra: dict[str, Any] | None = None,
                    **overrides: str) -> dict[str, str]:
        """An Airflow environment for ``home`` (``airflow_env``: the project's dags/ and plugins/)
        with ``sumit_default`` and ``crm_postgres`` pointed at this stack.

        ``metadata``: ``"sqlite"`` (a file in ``home``) or ``"postgres"`` (the ``airflow``
        database here, what a scheduler with several workers needs). ``isolated`` drops the
        caller's own ``AIRFLOW*`` variables (another AIRFLOW_HOME, say) first. ``celery``: the
        CeleryExecutor as docker-compose.yaml sets it up, its broker this stack's Redis, its
        results in the metadata database (so ``metadata="postgres"``). ``sumit_extra`` adds
        keys to ``sumit_default``'s extra (``{"page_size": 10}``).
        """
        if metadata not in ("sqlite", "postgres"):
            raise ValueError(f"metadata must be 'sqlite' or 'postgres', not {metadata!r}")
        if celery and metadata != "postgres":
            raise ValueError("the CeleryExecutor needs metadata='postgres' (its workers share that database)")
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} if isolated else None
        env = airflow_env(Path(home), sumit_conn=self.sumit_conn(**(sumit_extra or {})),
                          postgres_conn=self.pg.airflow_conn(), base=base)
        if metadata == "postgres":
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.metadata_database_url()
        if celery:
            env.update({
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": self.start_redis().url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.metadata_database_url(),
            })
        env.update(overrides)
        return env

    def redact(self, text: str) -> str:
        return text.replace(self.api_key, "***")

