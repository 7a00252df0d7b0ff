"""An Airflow environment for running crmsync's DAGs locally: throwaway AIRFLOW_HOME on SQLite,
the project's dags/ and plugins/, and the two connections pointed wherever the caller says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def sumit_connection(url: str, company_id: int | str, api_key: str, **extra: object) -> str:
    options = {"api_profile": "guide", **extra}
    return json.dumps({"conn_type": "sumit", "host": url, "login": str(company_id), "password": api_key, "extra": options})


def airflow_env(home: Path, *, sumit_conn: str, postgres_conn: dict, base: Mapping[str, str] | None = None,
                **overrides: str) -> dict[str, str]:
    """``base`` (default: this process's environment) plus Airflow's settings for ``home``."""
    plugins = str(PROJECT_ROOT / "plugins")
    env = dict(os.environ if base is None else base)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": plugins,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join(p for p in (plugins, env.get("PYTHONPATH")) if p),
        "AIRFLOW_CONN_SUMIT_DEFAULT": sumit_conn,
        "AIRFLOW_CONN_CRM_POSTGRES": json.dumps(postgres_conn),
    })
    env.update(overrides)
    return env


def migrate(env: dict[str, str]) -> None:
    """Create the Airflow metadata database (about 6 s on SQLite)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
