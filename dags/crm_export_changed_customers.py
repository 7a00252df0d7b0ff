from crmsync.dags.export_changed_customers import dag  # noqa: F401  the Airflow DAG crm_export_changed_customers, defined in the crmsync package
