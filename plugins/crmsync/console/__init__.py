"""The sync console: crmsync's pages inside Airflow's UI (an Airflow plugin's FastAPI app).

``app`` is the FastAPI app (console/app.py); console/plugin.py (the airflow.plugins entry point) mounts it at
/crmsync and adds the "CRM sync" navigation entry and a tab on every DAG run.
"""
