"""SUMIT's side without Airflow: the two API profiles' wire formats (:mod:`crmsync.sumit.api`),
the connection's settings, the request budget (rate limits) and redaction of the API key.
:class:`crmsync.hooks.sumit.SumitHook` puts them together with HTTP. Imports only
:mod:`crmsync.core`.
"""
