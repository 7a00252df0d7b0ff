from crmsync.dags.sumit_triggers import dag  # noqa: F401  the Airflow DAG crm_sumit_triggers, defined in the crmsync package
