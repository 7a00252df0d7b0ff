from crmsync.dags.pull import dag  # noqa: F401  the Airflow DAG crm_pull_customers, defined in the crmsync package
