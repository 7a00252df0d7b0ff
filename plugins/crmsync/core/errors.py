"""Errors crmsync raises, in words a data engineer can act on.

Plain exceptions (no Airflow import): the operators translate them into Airflow's
fail-now / retry-later semantics. No message built here may contain a request body
or the API key; callers pass texts through :func:`crmsync.sumit.redact.redact` first.
"""

from __future__ import annotations


class CrmSyncError(Exception):
    """Base class for every error crmsync raises on purpose."""


class ConfigurationError(CrmSyncError):
    """A connection or setting is unusable (missing password, bad URL, ...). Permanent."""


class SumitError(CrmSyncError):
    """Something went wrong talking to SUMIT."""

    def __init__(self, message: str, *, endpoint: str | None = None, http_status: int | None = None):
        super().__init__(message)
        self.endpoint = endpoint
        self.http_status = http_status


class SumitPermanentError(SumitError):
    """SUMIT answered with a failure that retrying cannot fix (validation, bad request)."""


class SumitAuthError(SumitPermanentError):
    """SUMIT refused the CompanyID/APIKey pair."""


class SumitProtocolError(SumitPermanentError):
    """SUMIT's answer was not what the API promises (not JSON, keys missing, paging broken)."""


class SumitTransientError(SumitError):
    """A fault worth retrying: connection, timeout, HTTP 5xx or 429.

    ``maybe_processed`` is True when the server may have acted on the request before the
    fault (read timeout, reset, HTTP 500): a non-idempotent call (create) is not retried
    then, so a retry can never create the same customer twice.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        maybe_processed: bool = False,
    ):
        super().__init__(message, endpoint=endpoint, http_status=http_status)
        self.retry_after = retry_after
        self.maybe_processed = maybe_processed


class InvalidRecord(CrmSyncError):
    """One record cannot be synced (no CustomerID, no name, wrong types). The run goes on."""
