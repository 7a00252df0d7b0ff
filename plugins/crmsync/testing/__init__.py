"""Throwaway services for tests, the demo and the benchmark (not used by the DAGs)."""
