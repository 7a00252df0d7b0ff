"""`make airflow`: a local Airflow 3 running crmsync's DAGs the way users run them.

Starts a throwaway PostgreSQL (the `customers` database for crmsync, and an `airflow`
database for Airflow's metadata), the SUMIT sandbox (seeded with sample customers), then
Airflow's own components as separate processes: `airflow api-server` (UI and REST API),
`airflow scheduler` (LocalExecutor) and `airflow dag-processor`, with the project's dags/
and plugins/, the two connections as AIRFLOW_CONN_* variables and the `sumit_api` pool.
Login is SimpleAuthManager's (Airflow 3's default) with a user and password we choose, so
they are known: `admin` / `admin` unless CRMSYNC_AIRFLOW_PASSWORD says otherwise.

With ``--executor celery`` it runs the CeleryExecutor instead, as docker-compose.yaml does
(broker: a throwaway Redis; results in the metadata database; every process shares the
Execution API's URL and JWT secret), with ``--workers`` Celery workers on this machine, each
with its own name (``-H workerN@host``, also what their task instances record as hostname)
and log-server port.

Ctrl-C or SIGTERM stops everything (each component's whole process group and what it
started, then Redis, the sandbox and PostgreSQL). `LiveAirflow` is the same thing as a
context manager, for the end-to-end tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))

import psutil  # noqa: E402  (one of Airflow's own dependencies)

from crmsync.testing.airflow_env import migrate  # noqa: E402
from crmsync.testing.postgres import LocalPostgres, free_port  # noqa: E402
from crmsync.testing.stack import COMPANY_ID, WORKER_HOSTNAME_ENV, LocalStack  # noqa: E402

DAG_IDS = ("crm_apply_crm_events", "crm_bidirectional_sync", "crm_export_changed_customers", "crm_link_customers",
           "crm_pull_customers", "crm_push_customers", "crm_resolve_conflicts", "crm_revert_run", "crm_sumit_triggers")
COMPONENTS = ("api-server", "scheduler", "dag-processor")  # started in this order, stopped in reverse
START_TIMEOUT_SECONDS = 180
STOP_TIMEOUT_SECONDS = 20
EXECUTORS = ("local", "celery")
POOL = ("sumit_api", "2", "crmsync: tasks calling SUMIT")


class AirflowStartError(RuntimeError):
    """A component died or Airflow was not ready in time; carries the logs' tails."""


class LiveAirflow:
    """``with LiveAirflow(".airflow") as af: af.url, af.token()`` — Airflow 3 with crmsync, live.

    ``home`` is wiped and reused (logs stay there after the block); ``port`` 0 picks a free
    one. PostgreSQL and the sandbox are a ``LocalStack`` (``self.stack``): ``seed_demo`` CRM
    customers are put in the sandbox and, with ``local_customers``, the table gets the
    local-only ones. ``env`` adds or overrides environment variables of every Airflow process
    (e.g. ``CRMSYNC_TASK_RETRIES``); ``sumit_extra`` adds keys to ``sumit_default``'s extra.

    ``executor="celery"`` runs the CeleryExecutor with ``workers`` Celery workers
    (``worker1``, ``worker2``, ...: ``airflow celery worker -H workerN@host --concurrency
    worker_concurrency``), Redis as the broker (``self.stack.redis``). ``kill_worker`` and
    ``start_worker`` take one down (the whole process tree, as a lost machine) and up again.
    """

    def __init__(self, home: Path | str, *, port: int = 8080, username: str = "admin",
                 password: str | None = None, seed_demo: int = 120, local_customers: bool = True,
                 env: dict[str, str] | None = None, executor: str = "local", workers: int = 2,
                 worker_concurrency: int = 1, sumit_extra: dict[str, Any] | None = None,
                 api_key: str | None = None, users: dict[str, tuple[str, str]] | None = None, log=print):
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, not {executor!r}")
        self.home = Path(home).resolve()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        # more logins: name -> (SimpleAuthManager role: viewer, user, op or admin; password)
        self.users = dict(users or {})
        self.company_id = COMPANY_ID
        self._api_key = api_key or "local-" + secrets.token_hex(16)  # the sandbox's; never printed
        self._webhook_token = secrets.token_urlsafe(32)  # the trigger receiver's (crmsync_webhook); never printed
        self._seed_demo = seed_demo
        self._local_customers = local_customers
        self._extra_env = dict(env or {})
        self._sumit_extra = dict(sumit_extra or {})
        self.executor = executor
        self._worker_concurrency = worker_concurrency
        # worker name -> (Celery node name, its log server's port); the same after a restart
        host = socket.gethostname()
        self.workers: dict[str, tuple[str, int]] = {
            f"worker{n}": (f"worker{n}@{host}", free_port()) for n in range(1, workers + 1)
        } if executor == "celery" else {}
        self._worker_log_start: dict[str, int] = {}  # where the current start of each worker's log begins
        self._log = log
        self._cleanup = contextlib.ExitStack()
        self.processes: dict[str, subprocess.Popen] = {}
        self.stack: LocalStack | None = None
        self.pg: LocalPostgres | None = None
        self.sandbox = None
        self.env: dict[str, str] = {}

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> "LiveAirflow":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "LiveAirflow":
        started = time.monotonic()
        self._check_port_free()
        self._fresh_home()

        self._log("Starting PostgreSQL and the SUMIT sandbox ...")
        self.stack = self._cleanup.enter_context(LocalStack(
            api_key=self._api_key, company_id=self.company_id, seed_demo=self._seed_demo or None,
            local_customers=self._local_customers, redis=self.executor == "celery"))
        self.pg, self.sandbox = self.stack.pg, self.stack.sandbox

        self.env = self._airflow_env()
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({self.username: self.password,
                                         **{name: pw for name, (_, pw) in self.users.items()}}) + "\n",
                             encoding="utf-8")
        passwords.chmod(0o600)

        self._log("Creating Airflow's metadata database (airflow db migrate) ...")
        migrate(self.env)
        self.processes["pools"] = self._popen("pools", ["pools", "set", *POOL])  # meanwhile, the components:
        for name in COMPONENTS:
            self.processes[name] = self._popen(name, [name])
        for name in self.workers:
            self.start_worker(name, wait=False)
        if self.processes["pools"].wait(timeout=120) != 0:
            raise AirflowStartError("`airflow pools set` failed:\n" + self._tail("pools"))
        del self.processes["pools"]
        self._log(f"Waiting for the {', '.join(self.components())} (logs in {self.home}) ...")
        self._wait_until_ready()
        self._log(f"Airflow is ready after {time.monotonic() - started:.0f} s.")
        return self

    def stop(self) -> None:
        """Stop every component's process group (SIGTERM, SIGKILL after a while) and whatever
        they started in groups of their own (task runners), then Redis, the sandbox and
        PostgreSQL. Safe to call twice."""
        processes = [p for p in reversed(list(self.processes.values())) if p.poll() is None]
        descendants = [child for p in processes for child in _descendants(p.pid)]
        for process in processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)  # leftovers of the group too
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        _kill_all(descendants)  # task runners live in process groups of their own
        self.processes.clear()
        self._cleanup.close()

    # -- Celery workers ------------------------------------------------------------------
    def components(self) -> list[str]:
        """The long-running processes' names (their logs are <home>/<name>.log)."""
        return [*COMPONENTS, *self.workers]

    def worker_env(self, name: str) -> dict[str, str]:
        node, log_port = self.workers[name]
        return {**self.env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "crmsync.testing.stack.worker_hostname",
                WORKER_HOSTNAME_ENV: node}

    def start_worker(self, name: str, *, wait: bool = True) -> None:
        """``airflow celery worker -H <node>`` (again, after ``kill_worker``); with ``wait``,
        until Celery says it is ready. Its log is appended to <home>/<name>.log."""
        node, _ = self.workers[name]
        if name in self.processes and self.processes[name].poll() is None:
            raise RuntimeError(f"{name} is running already")
        log = self.log_file(name)
        self._worker_log_start[name] = log.stat().st_size if log.exists() else 0
        self.processes[name] = self._popen(name, ["celery", "worker", "-H", node, "--concurrency",
                                                  str(self._worker_concurrency)], env=self.worker_env(name),
                                           append=True)
        if wait:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not self._worker_ready(name):
                if self.processes[name].poll() is not None:
                    raise AirflowStartError(f"airflow celery worker {name} exited with code "
                                            f"{self.processes[name].returncode}:\n" + self._tail(name))
                if time.monotonic() > deadline:
                    raise AirflowStartError(f"{name} was not ready after {START_TIMEOUT_SECONDS} s:\n" + self._tail(name))
                time.sleep(0.5)

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL the worker and everything it started, task runners included (they run in
        process groups of their own), as if its machine died; returns the pids killed."""
        process = self.processes[name]
        if process.poll() is not None:
            raise RuntimeError(f"{name} is not running (exit code {process.returncode})")
        _signal_group(process, signal.SIGSTOP)  # nothing in the worker's group forks any more
        doomed = [psutil.Process(process.pid), *_descendants(process.pid)]
        _kill_all(doomed)
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=10)
        return [p.pid for p in doomed]

    def set_consuming(self, name: str, consuming: bool) -> None:
        """Let worker ``name`` take new tasks from Airflow's queue, or not (Celery's remote control:
        ``add_consumer`` / ``cancel_consumer``); a task it is running goes on either way."""
        from celery import Celery

        node, _ = self.workers[name]
        queue = self.env.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE", "default")
        app = Celery(broker=self.stack.redis.url)
        try:
            command = app.control.add_consumer if consuming else app.control.cancel_consumer
            replies = command(queue, destination=[node], reply=True, timeout=10)
        finally:
            app.close()
        if not any(node in reply for reply in replies or []):
            raise RuntimeError(f"{node} did not answer Celery's {command.__name__}({queue!r}):\n" + self._tail(name))

    def worker_of(self, hostname: str | None) -> str | None:
        """Which worker a task instance's ``hostname`` names."""
        return next((name for name, (node, _) in self.workers.items() if node == hostname), None)

    def _worker_ready(self, name: str) -> bool:
        node, _ = self.workers[name]
        log = self.log_file(name)
        if not log.exists():
            return False
        with open(log, "rb") as output:  # only what this start of the worker wrote
            output.seek(self._worker_log_start.get(name, 0))
            return f"{node} ready.".encode() in output.read()

    # -- the REST API --------------------------------------------------------------------
    def token(self) -> str:
        """A JWT from SimpleAuthManager's token endpoint, ``POST /auth/token``."""
        status, body = self.request("POST", "/auth/token", {"username": self.username, "password": self.password},
                                    token=None)
        if status != 201:
            raise RuntimeError(f"POST /auth/token answered HTTP {status}: {body}")
        return body["access_token"]

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                timeout: float = 30) -> tuple[int, Any]:
        """One call to the API server; returns (HTTP status, decoded JSON or text)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                status, raw = error.code, error.read()
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    # -- output --------------------------------------------------------------------------
    def webhook_url(self) -> str:
        """The receiver's URL, token and all: for the sandbox's subscriptions and tests, never printed."""
        return f"{self.url}/crmsync/webhooks/sumit/{self._webhook_token}"

    def redact(self, text: str) -> str:
        return text.replace(self._api_key, "***").replace(self._webhook_token, "***")

    def log_file(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def _tail(self, name: str, chars: int = 3000) -> str:
        path = self.log_file(name)
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else "(no log)"
        return self.redact(text[-chars:])

    def logs_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {name} ({self.log_file(name)}) ---\n{self._tail(name, chars)}"
                         for name in self.components())

    def banner(self) -> str:
        pg = self.pg
        return "\n".join([
            "",
            f"Airflow UI and REST API: {self.url}   login: {self.username} / {self.password}"
            + "".join(f", {name} ({role})" for name, (role, _) in self.users.items()),
            f"  CRM sync console: {self.url}/crmsync/ (also \"CRM sync\" in Airflow's navigation)",
            f"  DAGs: {', '.join(DAG_IDS)} (paused on creation: unpause one in the UI before it runs)",
            f"  crm_postgres:  postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.dbname}"
            f"  (psql -h {pg.host} -p {pg.port} -U {pg.user} {pg.dbname})",
            f"  sumit_default: the SUMIT sandbox at {self.sandbox.url} (CompanyID {self.company_id}, "
            f"{self._seed_demo} CRM customers)",
            *([f"  CeleryExecutor: {', '.join(node for node, _ in self.workers.values())} "
               f"(broker {self.stack.redis.url})"] if self.workers else []),
            f"  pool sumit_api: 2 slots; logs: {self.home}/{{{','.join(self.components())}}}.log and logs/",
            "  Try: trigger crm_push_customers with {\"customer_ids\": [1, 2, 3]}, or crm_bidirectional_sync.",
            f"  SUMIT's triggers: receiver at {self.url}/crmsync/webhooks/sumit/*** (connection crmsync_webhook); "
            "with the rest profile, crm_sumit_triggers {\"action\": \"subscribe\"} subscribes it.",
            "Ctrl-C stops everything.",
        ])

    # -- internals -----------------------------------------------------------------------
    def _check_port_free(self) -> None:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.host, self.port))
            except OSError:
                raise AirflowStartError(f"port {self.port} is in use; choose another: make airflow AIRFLOW_PORT=8081"
                                        " (or scripts/airflow_local.py --port 8081)") from None

    def _fresh_home(self) -> None:
        """Wipe ``home`` from an earlier run, but never a folder this class did not make."""
        marker = self.home / ".crmsync-live-airflow"
        if self.home.exists() and any(self.home.iterdir()) and not marker.exists():
            raise AirflowStartError(f"{self.home} is not empty and was not made by scripts/airflow_local.py; "
                                    "delete it or choose another --home")
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        marker.write_text("made by scripts/airflow_local.py; wiped at its next start\n", encoding="utf-8")

    def _airflow_env(self) -> dict[str, str]:
        # Metadata in the stack's PostgreSQL (database `airflow`); a caller's own Airflow
        # settings (another AIRFLOW_HOME, say) must not leak in.
        env = self.stack.airflow_env(self.home, metadata="postgres", isolated=True,
                                     celery=self.executor == "celery", sumit_extra=self._sumit_extra)
        if self.executor == "local":
            env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
            # the scheduler's log server: not the fixed 8793, which another Airflow here may hold
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
        # Every process, workers included, shares the Execution API's URL and its JWT secret.
        env.update({
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                [f"{self.username}:admin", *(f"{name}:{role}" for name, (role, _) in self.users.items())]),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "simple_auth_manager_passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__HOST": self.host,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            # SUMIT's triggers in: the receiver's token, and the address the sandbox posts them to
            "AIRFLOW_CONN_CRMSYNC_WEBHOOK": json.dumps({"conn_type": "generic", "password": self._webhook_token,
                                                        "extra": {"public_url": self.url}}),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self._extra_env)
        return env

    def _popen(self, name: str, args: list[str], *, env: dict[str, str] | None = None,
               append: bool = False) -> subprocess.Popen:
        """``airflow <args>`` in its own session (its own process group), output to <home>/<name>.log."""
        with open(self.log_file(name), "a" if append else "w", encoding="utf-8") as sink:
            return subprocess.Popen([sys.executable, "-m", "airflow", *args], stdin=subprocess.DEVNULL, stdout=sink,
                                    stderr=subprocess.STDOUT, env=env or self.env, cwd=self.home,
                                    start_new_session=True)

    def _wait_until_ready(self) -> None:
        """Until the API answers, the scheduler and dag-processor heartbeat, the pool exists
        and all of crmsync's DAGs are parsed without import errors."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        token = None
        last = "the api-server did not answer"
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AirflowStartError(f"airflow {name} exited with code {process.returncode}:\n"
                                            + self._tail(name))
            try:
                last = self._readiness(token)
                if last == "ready":
                    return
                if last == "token":
                    token = self.token()
            except (OSError, urllib.error.URLError) as error:
                last = f"the api-server did not answer ({error})"
            time.sleep(1)
        raise AirflowStartError(f"Airflow was not ready after {START_TIMEOUT_SECONDS} s: {last}\n" + self.logs_tail())

    def _readiness(self, token: str | None) -> str:
        not_ready = [name for name in self.workers if not self._worker_ready(name)]
        if not_ready:
            return f"Celery workers not ready yet: {not_ready}"
        status, health = self.request("GET", "/api/v2/monitor/health", timeout=5)
        if status != 200:
            return f"health answered HTTP {status}"
        for component in ("metadatabase", "scheduler", "dag_processor"):
            if (health.get(component) or {}).get("status") != "healthy":
                return f"{component} is not healthy yet: {health.get(component)}"
        if token is None:
            return "token"
        status, errors = self.request("GET", "/api/v2/importErrors", token=token, timeout=5)
        if status == 200 and errors.get("total_entries"):
            raise AirflowStartError("the DAG files have import errors:\n"
                                    + self.redact(json.dumps(errors["import_errors"], indent=1)[-4000:]))
        status, dags = self.request("GET", "/api/v2/dags?dag_id_pattern=crm_&limit=100", token=token, timeout=5)
        found = sorted(d["dag_id"] for d in dags.get("dags", [])) if status == 200 else []
        if found != sorted(DAG_IDS):
            return f"DAGs parsed so far: {found}"
        status, pool = self.request("GET", f"/api/v2/pools/{POOL[0]}", token=token, timeout=5)
        if status != 200:
            return f"pool {POOL[0]} not there yet (HTTP {status})"
        status, plugins = self.request("GET", "/api/v2/plugins", token=token, timeout=5)
        if status != 200 or "crmsync_console" not in {p["name"] for p in plugins.get("plugins", [])}:
            return f"the crmsync_console plugin is not loaded (HTTP {status}: {str(plugins)[:300]})"
        return "ready"


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_all(processes: list[psutil.Process]) -> None:
    """SIGKILL each process still alive (psutil checks it is the same process, not a reused pid)."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/airflow_local.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_PORT", "8080")),
                        help="API server and UI port (default 8080, or $AIRFLOW_PORT)")
    parser.add_argument("--home", default=str(ROOT / ".airflow"),
                        help="throwaway AIRFLOW_HOME, wiped at start (default .airflow/)")
    parser.add_argument("--seed-demo", type=int, default=120, help="sample customers in the sandbox (120)")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="local: the LocalExecutor (default); celery: the CeleryExecutor on a local Redis")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers with --executor celery (2)")
    parser.add_argument("--api-profile", choices=("guide", "rest"), default="guide",
                        help="sumit_default's API profile (guide); rest: SUMIT's published API, with triggers")
    args = parser.parse_args(argv)

    def terminate(signum, frame):  # Ctrl-C, SIGTERM, SIGHUP: leave the block below; a second one waits
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminate)
    password = os.environ.get("CRMSYNC_AIRFLOW_PASSWORD") or "admin"
    try:
        with LiveAirflow(args.home, port=args.port, password=password, seed_demo=args.seed_demo,
                         executor=args.executor, workers=args.workers,
                         sumit_extra={"api_profile": args.api_profile, "customers_folder": "customers"},
                         users={"viewer": ("viewer", os.environ.get("CRMSYNC_AIRFLOW_VIEWER_PASSWORD") or "viewer")},
                         log=lambda message: print(message, flush=True)) as live:
            print(live.banner(), flush=True)
            while all(p.poll() is None for p in live.processes.values()):
                time.sleep(1)
            dead = [name for name, p in live.processes.items() if p.poll() is not None]
            print(f"airflow {', '.join(dead)} stopped unexpectedly; its log:\n{live._tail(dead[0])}", flush=True)
            print("Stopping everything.", flush=True)
            return 1
    except KeyboardInterrupt:
        print("\nStopped Airflow, the sandbox and PostgreSQL.", flush=True)
        return 0
    except RuntimeError as error:  # AirflowStartError, or PostgreSQL/migrate could not start
        print(f"make airflow: {error}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
