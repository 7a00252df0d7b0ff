"""Integration fixtures: a real PostgreSQL, the SUMIT sandbox over HTTP, and Airflow itself.

The Airflow environment is set before anything imports Airflow: a throwaway AIRFLOW_HOME
with a SQLite metadata database, the project's dags/ and plugins/. Each test starts from an
empty customers database (no tables: the DAGs must create them) and an empty sandbox.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import pytest

from crmsync.testing.airflow_env import PROJECT_ROOT, airflow_env, migrate, sumit_connection

# Scanned for in every output and table. Random first 8 characters (a cut message must not
# leave them behind), then characters that every escaping changes: JSON, URL-encoding, repr.
API_KEY = secrets.token_urlsafe(6) + "+/=\"\\'é-" + secrets.token_hex(12)


def key_forms(key: str = API_KEY) -> set[str]:
    """Every spelling of ``key`` a leak could take (written here, independently of crmsync's
    own redaction), and its first 8 characters."""
    forms = {key, key[:8], json.dumps(key)[1:-1], json.dumps(key, ensure_ascii=False)[1:-1], repr(key)[1:-1],
             urllib.parse.quote(key, safe=""), urllib.parse.quote_plus(key)}
    return {form for form in forms if form}


def assert_no_key(text: str, where: str, key: str = API_KEY) -> None:
    found = sorted(form for form in key_forms(key) if form in text)
    assert not found, f"{where} holds the API key, spelt {found!r}"


def assert_key_sent_only_as_credentials(sandbox) -> int:
    """What crmsync sent, before any scrubbing: the key once per body, as Credentials.APIKey,
    and nowhere else; and no customer the sandbox stored holds it. Returns the bodies checked."""
    sent = sandbox.control.sent()
    for entry in sent:
        body = json.loads(entry["body"])
        assert body["Credentials"]["APIKey"] == API_KEY, entry["path"]
        assert entry["body"].count(API_KEY[:8]) == 1, entry["path"]
        del body["Credentials"]
        assert_no_key(json.dumps(body) + json.dumps(body, ensure_ascii=False), f"a body sent to {entry['path']}")
    assert_no_key(json.dumps(sandbox.control.customers()), "the customers the sandbox stored")
    return len(sent)
COMPANY_ID = 1000
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="crmsync-test-airflow-"))
FAST_RETRIES = {"backoff_initial": 0.05, "backoff_max": 0.3, "max_attempts": 4, "read_timeout": 3,
                "connect_timeout": 2, "page_size": 50}

# Before any Airflow import: the environment decides Airflow's configuration.
os.environ.update(airflow_env(
    AIRFLOW_HOME, sumit_conn="{}", postgres_conn={}, CRMSYNC_TASK_RETRIES="0", CRMSYNC_TASK_RETRY_DELAY_SECONDS="1",
))

CRM_TABLES = ("sumit_customers, crm_sync_runs, crm_sync_errors, crm_sync_conflicts, crm_sync_changes, crm_sync_created, "
              "crm_sync_plans, crm_sync_listing, crm_inbox, crm_sumit_subscriptions, crm_sync_matches, crm_sync_match_exclusions, "
              "crm_sync_schema, crm_sync_customer_counts, crm_sync_customer_search, crm_sync_customer_search_packed, "
              "crm_sync_customer_search_pack, crm_sync_customer_search_recent")


@pytest.fixture(scope="session")
def stack():
    """The session's local stack; each part starts when a test first needs it (``pg``, ``sandbox``)."""
    from crmsync.testing.stack import LocalStack

    with LocalStack(api_key=API_KEY, company_id=COMPANY_ID, postgres=False, sandbox=False,
                    sandbox_options={"verbose": True, "keep_sent_bodies": True}) as local:
        yield local


@pytest.fixture(scope="session")
def pg(stack):
    """A throwaway PostgreSQL with an empty ``customers`` database, for the whole session."""
    return stack.start_postgres()


@pytest.fixture(scope="session")
def sandbox(stack):
    """The SUMIT sandbox (CompanyID ``COMPANY_ID``, key ``API_KEY``), for the whole session."""
    return stack.start_sandbox()


TEMPLATE_DB = AIRFLOW_HOME / "template.db"  # migrated and never used: copied for subprocess runs


def _quick_dag_test_polls() -> None:
    """dag.test() sleeps a second whenever no task instance looks ready ("No tasks to run.
    unrunnable tasks: ..."), and it does so once in most of crmsync's runs: the report task, the
    turn after the mass-change approval was skipped. Here that wait is 50 ms; every other sleep
    (crmsync's backoff and pacing, the sandbox's) is as asked. Only the test harness: a DAG runs
    as it would."""
    import time

    from airflow.sdk.definitions.dag import DAG

    real_sleep, loop = time.sleep, DAG.test.__code__

    def sleep(seconds: float) -> None:
        real_sleep(min(seconds, 0.05) if sys._getframe(1).f_code is loop else seconds)

    time.sleep = sleep


@pytest.fixture(scope="session")
def dagbag():
    _quick_dag_test_polls()
    migrate(dict(os.environ))
    shutil.copyfile(AIRFLOW_HOME / "airflow.db", TEMPLATE_DB)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    # The params' defaults as the DAG files declare them, read before any run (see run_dag).
    from airflow.sdk.definitions._internal.types import NOTSET

    bag.crmsync_param_defaults = {  # a None default is a value (a nullable param's), NOTSET is none
        dag_id: {name: param.value for name, param in ((n, dag.params.get_param(n)) for n in dag.params.keys())
                 if param.value is not NOTSET}
        for dag_id, dag in bag.dags.items()
    }
    return bag


PROFILES = ("guide", "rest")
LIST_PATH = {"guide": "/website/customers/getlist/", "rest": "/crm/data/listentities/"}
PUSH_PATHS = {"guide": ("/website/customers/update/",),
              "rest": ("/accounting/customers/update/", "/accounting/customers/create/")}


def set_sumit_connection(url: str, *, api_key: str = API_KEY, company_id: int | str = COMPANY_ID,
                         profile: str | None = None, **extra) -> None:
    """Point sumit_default at ``url``; the profile stays the current test's unless given."""
    profile = profile or os.environ.get("CRMSYNC_TEST_PROFILE", "guide")
    options = {**FAST_RETRIES, "api_profile": profile, "customers_folder": "customers", **extra}
    os.environ["AIRFLOW_CONN_SUMIT_DEFAULT"] = sumit_connection(url, company_id, api_key, **options)


def list_requests(sandbox, profile: str) -> list[dict]:
    return [r for r in sandbox.control.requests() if r["path"] == LIST_PATH[profile]]


def push_requests(sandbox, profile: str) -> list[dict]:
    return [r for r in sandbox.control.requests() if r["path"] in PUSH_PATHS[profile]]


def _prepare(pg, sandbox, profile: str) -> None:
    with pg.connect(autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {CRM_TABLES} CASCADE")
    sandbox.control.reset()
    os.environ["CRMSYNC_TEST_PROFILE"] = profile
    os.environ["AIRFLOW_CONN_CRM_POSTGRES"] = json.dumps(pg.airflow_conn())
    set_sumit_connection(sandbox.url)


@pytest.fixture(params=PROFILES)
def profile(request):
    """Every DAG scenario runs under both SUMIT API profiles."""
    return request.param


@pytest.fixture
def env(pg, sandbox, dagbag, profile):
    """Empty database, empty sandbox, connections pointed at both, under one API profile."""
    _prepare(pg, sandbox, profile)
    yield
    sandbox.control.clear_faults()


@pytest.fixture
def rest_env(pg, sandbox, dagbag):
    """As ``env``, under the rest profile only (SUMIT's triggers and getentity are the rest API's)."""
    _prepare(pg, sandbox, "rest")
    yield
    sandbox.control.clear_faults()


@pytest.fixture
def guide_env(pg, sandbox, dagbag):
    """As ``env``, for tests where the API profile plays no part (e.g. refused params)."""
    _prepare(pg, sandbox, "guide")
    yield
    sandbox.control.clear_faults()


def airflow_cli(*args: str, home: Path | None = None, **env_overrides: str) -> subprocess.CompletedProcess:
    """Run ``airflow <args>`` in a separate process with its own copy of the metadata database.

    SQLite shared between this process (dag.test) and a CLI process was seen to corrupt, so
    each CLI run gets a fresh copy of the migrated template.
    """
    return subprocess.run([sys.executable, "-m", "airflow", *args], capture_output=True, text=True,
                          env=_cli_env(home, env_overrides), cwd=PROJECT_ROOT)


def _cli_env(home: Path | None, env_overrides: dict[str, str]) -> dict[str, str]:
    """The environment of a CLI run: a fresh copy of the migrated metadata database in ``home``."""
    home = home or Path(tempfile.mkdtemp(prefix="crmsync-cli-airflow-"))
    shutil.copyfile(TEMPLATE_DB, home / "airflow.db")
    return dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
                **env_overrides)


def airflow_popen(*args: str, output: Path, home: Path | None = None, **env_overrides: str) -> subprocess.Popen:
    """Start ``airflow <args>`` as ``airflow_cli`` does, without waiting: for runs a test kills
    or overlaps with another. Output (stdout and stderr) goes to the file ``output``, never a
    pipe nobody reads; the process leads its own process group, so ``os.killpg`` takes every
    child with it, as a worker's death would."""
    with open(output, "w", encoding="utf-8") as sink:
        return subprocess.Popen([sys.executable, "-m", "airflow", *args], stdout=sink, stderr=subprocess.STDOUT,
                                text=True, env=_cli_env(home, env_overrides), cwd=PROJECT_ROOT,
                                start_new_session=True)


@pytest.fixture
def run_dag(dagbag):
    """Run a DAG through Airflow (dag.test) and return the DagRun's final state."""

    def run(dag_id: str, conf: dict | None = None) -> str:
        dag = dagbag.get_dag(dag_id)
        # In-process, Airflow 3.3's dag.test() carries one run's conf into the params of later
        # runs of the same DAG (even into the DAG's own Param objects, once a task holds them,
        # as the human-in-the-loop operators do); sending every param (the file's defaults,
        # read before any run, unless given) keeps each test's run independent of the ones before it.
        defaults = dagbag.crmsync_param_defaults[dag_id]
        try:
            run.last = dag.test(run_conf={**defaults, **(conf or {})})  # the DagRun, for task states and XComs
            return str(run.last.state)
        finally:  # ... and Param.resolve keeps the run's values: put the declared ones back for later tests
            _restore_declared_params(dagbag)

    return run


def _restore_declared_params(dagbag) -> None:
    """Every DAG's params (and its tasks' copies) as its file declares them (test_dag_integrity reads them)."""
    from airflow.sdk.definitions._internal.types import NOTSET

    for dag_id, dag in dagbag.dags.items():
        defaults = dagbag.crmsync_param_defaults[dag_id]
        for params in [dag.params, *(task.params for task in dag.tasks)]:
            for name in params.keys():
                params.get_param(name).value = defaults.get(name, NOTSET)


def rows(pg, query, *args):
    with pg.connect() as conn:
        return conn.execute(query, args).fetchall()


def insert_local(pg, name, **values):
    """A customer of the company's own application: a local row no sync made (no CRM id)."""
    columns = ["name", *values]
    with pg.connect() as conn:
        return conn.execute(
            f"INSERT INTO sumit_customers ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) RETURNING id",
            [name, *values.values()],
        ).fetchone()[0]


def ensure_schema(pg):
    from crmsync.db import sql

    with pg.connect() as conn:
        conn.execute(sql.load("schema"))


CONTENT_COLUMNS = ("name", "email", "phone", "company_name", "tax_id", "address", "city", "zip_code")
CRM_CONTENT_KEYS = ("Name", "Email", "Phone", "CompanyName", "TaxID", "Address", "City", "ZipCode")


def _content(values) -> tuple:
    return tuple((str(v).strip() or None) if v is not None else None for v in values)


def _local_rows(pg) -> list[tuple]:
    with pg.connect() as conn:
        if conn.execute("SELECT to_regclass('sumit_customers')").fetchone()[0] is None:
            return []
        return conn.execute(f"SELECT sumit_customer_id, {', '.join(CONTENT_COLUMNS)} FROM sumit_customers").fetchall()


def duplicates(pg, sandbox) -> int:
    """The duplicates a sync can make, counted where they can happen (``sumit_customer_id`` has a
    unique index, so counting it could only ever say 0): two local rows for one CRM customer
    (the same content twice in the table, one of them unlinked, say) plus two SUMIT customers for
    one local row (the same content twice in SUMIT: a create sent twice)."""
    local = [_content(r[1:]) for r in _local_rows(pg)]
    crm = [_content(c.get(k) for k in CRM_CONTENT_KEYS) for c in sandbox.control.customers()]
    return (len(local) - len(set(local))) + (len(crm) - len(set(crm)))


def lost_and_duplicated(pg, sandbox) -> tuple[int, int]:
    """(CRM customers no local row links to, ``duplicates``): the two figures of the reliability
    table after a run that should have synced everything, measured, not assumed."""
    crm = {str(c["CustomerID"]) for c in sandbox.control.customers()}
    linked = {r[0] for r in _local_rows(pg) if r[0] is not None}
    return len(crm - linked), duplicates(pg, sandbox)


def data_snapshot(pg, sandbox) -> dict:
    """Everything a run could write but its run row: every local customer row whole, the error and
    conflict tables, and what SUMIT holds."""
    with pg.connect() as conn:
        tables = {}
        for table in ("sumit_customers", "crm_sync_errors", "crm_sync_conflicts"):
            exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None
            tables[table] = sorted(r[0] for r in conn.execute(f"SELECT row_to_json(t)::text FROM {table} t")) \
                if exists else None
    return {**tables, "sumit": json.dumps(sandbox.control.customers(), sort_keys=True)}


def lost_since(before: dict, after: dict) -> int:
    """Local customer rows that were there before and are gone or changed now."""
    return len(set(before["sumit_customers"] or []) - set(after["sumit_customers"] or []))
