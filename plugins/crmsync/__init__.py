"""crmsync: keep a PostgreSQL customers table and SUMIT CRM in step (Airflow 3)."""
