"""Throwaway services for tests, the demo and the benchmark (not used by the DAGs):
``postgres.LocalPostgres``, ``airflow_env``, and ``stack.LocalStack``, which puts them and
the SUMIT sandbox together for ``make demo``, ``make airflow``, ``make bench`` and the tests."""
