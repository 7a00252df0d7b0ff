from crmsync.dags.resolve_conflicts import dag  # noqa: F401  the Airflow DAG crm_resolve_conflicts, defined in the crmsync package
