"""The crmsync console as an Airflow plugin (Airflow 3.1+: ``fastapi_apps`` and ``external_views``).

Airflow finds it through the ``airflow.plugins`` entry point of the installed crmsync
distribution (pyproject.toml): installing the wheel is all a deployment does, no file is
copied into a plugins folder (and none may be: the same plugin twice is an import error).

- ``/crmsync``: the console's FastAPI app, mounted on the api-server (crmsync/console/app.py);
  it authenticates every call itself (Airflow does not, for a plugin's app).
- "CRM sync" in Airflow's navigation, showing the console in Airflow's frame.
- A "CRM sync" tab on every DAG run, showing that run's summary, changes and errors.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from crmsync.console.app import app as console_app


class CrmSyncConsolePlugin(AirflowPlugin):
    name = "crmsync_console"
    fastapi_apps = [{"app": console_app, "url_prefix": "/crmsync", "name": "crmsync console"}]
    external_views = [
        {"name": "CRM sync", "href": "/crmsync/customers", "destination": "nav", "url_route": "crmsync",
         "category": None},
        {"name": "CRM sync", "href": "/crmsync/run/{DAG_ID}/{RUN_ID}", "destination": "dag_run",
         "url_route": "crmsync_run"},
    ]
