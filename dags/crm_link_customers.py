from crmsync.dags.link_customers import dag  # noqa: F401  the Airflow DAG crm_link_customers, defined in the crmsync package
