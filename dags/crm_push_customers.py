from crmsync.dags.push import dag  # noqa: F401  the Airflow DAG crm_push_customers, defined in the crmsync package
