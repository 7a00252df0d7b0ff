"""docker-compose.yaml is valid (``docker-compose config`` parses it) and runs crmsync the way
the official Airflow 3 file runs Airflow: CeleryExecutor with Redis, the metadata database,
api-server, scheduler, dag-processor, triggerer, worker, and an airflow-init that migrates,
creates the admin user and the sumit_api pool; plus the customers database and the sandbox."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from crmsync.testing.airflow_env import PROJECT_ROOT

AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-init"}


@pytest.fixture(scope="module")
def compose() -> dict:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed, so docker-compose.yaml cannot be checked: "
                    "`apt-get install docker-compose` (scripts/system-deps.sh does it for `make test`).")
    result = subprocess.run([binary, "--file", str(PROJECT_ROOT / "docker-compose.yaml"), "config"],
                            capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
                            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"})
    assert result.returncode == 0, f"docker-compose config refused the file:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def test_every_service_of_the_celery_layout_and_crmsyncs_own(compose):
    assert set(compose["services"]) >= AIRFLOW_SERVICES | {"postgres", "redis", "customers-db", "sumit-sandbox"}
    commands = {name: _words(compose["services"][name].get("command")) for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands == {"airflow-apiserver": ["api-server"], "airflow-scheduler": ["scheduler"],
                        "airflow-dag-processor": ["dag-processor"], "airflow-triggerer": ["triggerer"],
                        "airflow-worker": ["celery", "worker"]}


def test_airflow_runs_the_celery_executor_on_redis_and_the_metadata_postgres(compose):
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://") and "@redis:" in env["AIRFLOW__CELERY__BROKER_URL"]
        assert "@postgres/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"


def test_init_migrates_creates_the_user_and_the_sumit_api_pool(compose):
    init = compose["services"]["airflow-init"]
    script = " ".join(_words(init["command"]))
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert "airflow version" in script  # the image's entrypoint migrates and creates the user before it
    assert 'airflow pools set sumit_api 2' in script
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert compose["services"][name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_the_connections_point_at_the_customers_database_and_the_sandbox(compose):
    env = compose["services"]["airflow-worker"]["environment"]
    postgres = json.loads(env["AIRFLOW_CONN_CRM_POSTGRES"])
    sumit = json.loads(env["AIRFLOW_CONN_SUMIT_DEFAULT"])
    customers_db = compose["services"]["customers-db"]["environment"]
    assert (postgres["conn_type"], postgres["host"], postgres["port"]) == ("postgres", "customers-db", 5432)
    assert (postgres["login"], postgres["schema"]) == (customers_db["POSTGRES_USER"], customers_db["POSTGRES_DB"])
    sandbox = compose["services"]["sumit-sandbox"]["command"]
    assert sandbox[:3] == ["python", "-m", "crmsync.sandbox"] and "0.0.0.0" in sandbox
    port = sandbox[sandbox.index("--port") + 1]
    assert (sumit["conn_type"], sumit["host"]) == ("sumit", f"http://sumit-sandbox:{port}")
    assert sumit["login"] == sandbox[sandbox.index("--company-id") + 1]
    assert sumit["password"] == sandbox[sandbox.index("--api-key") + 1]


def test_airflow_containers_install_the_requirements_and_the_crmsync_distribution(compose):
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        service = compose["services"][name]
        start = " ".join(_words(service["entrypoint"])).replace("$$", "$")  # docker-compose 1.x re-escapes $
        # the package with its declared dependencies, within the repository's pins: no requirements.txt
        # (the suite's tools), no --no-deps, no plugins folder or PYTHONPATH: what a deployment does
        assert '-c /opt/airflow/crmsync-src/constraints.txt "/tmp/crmsync-build[celery]"' in start, name
        assert "--no-deps" not in start and "requirements.txt" not in start and 'exec /entrypoint "$@"' in start, name
        mounted = {volume.split(":")[1] if isinstance(volume, str) else volume["target"] for volume in service["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/crmsync-src/pyproject.toml", "/opt/airflow/crmsync-src/plugins",
                "/opt/airflow/crmsync-src/include", "/opt/airflow/crmsync-src/constraints.txt"} <= mounted, name
        assert "/opt/airflow/plugins" not in mounted and "/opt/airflow/include" not in mounted, name
        assert not {"PYTHONPATH", "CRMSYNC_SQL_DIR"} & set(service["environment"]), name


def _words(command) -> list[str]:
    """docker-compose 1.x prints a command given as a string as a string, 2.x as a list."""
    return command.split() if isinstance(command, str) else list(command)
