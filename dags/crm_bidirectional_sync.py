from crmsync.dags.bidirectional_sync import dag  # noqa: F401  the Airflow DAG crm_bidirectional_sync, defined in the crmsync package
