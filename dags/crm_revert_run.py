from crmsync.dags.revert_run import dag  # noqa: F401  the Airflow DAG crm_revert_run, defined in the crmsync package
