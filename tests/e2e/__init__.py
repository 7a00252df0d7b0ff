"""End-to-end tests against a live Airflow (a package, so its Airflow stops before the next suite starts)."""
