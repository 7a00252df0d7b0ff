from crmsync.dags.apply_crm_events import dag  # noqa: F401  the Airflow DAG crm_apply_crm_events, defined in the crmsync package
