"""What both profiles' endpoints share: the envelope every SUMIT answer comes in, the
credentials check, and ``Backend``, what an endpoint sees of the sandbox's state."""

from __future__ import annotations

import hmac
from contextlib import AbstractContextManager
from typing import Any, Protocol

from crmsync.sandbox.customers import CustomerStore

INVALID_CREDENTIALS = "Invalid credentials (CompanyID/APIKey)"


class Backend(Protocol):
    """The part of ``SandboxState`` the endpoints use. Envelopes go through ``failure`` and
    ``success`` so that a test replacing them on the state sees every answer."""

    store: CustomerStore
    list_shape: str
    max_page_size: int
    customers_folder: str
    triggers: Any  # a crmsync.sandbox.triggers.TriggerHub (not imported here: that module imports this one)

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """Held while reading or changing the store or the knobs."""

    @property
    def knobs(self) -> dict[str, Any]:
        """The knobs in force (read them under ``lock``)."""

    def failure(self, message: str, numeric: bool = False) -> dict[str, Any]:
        """A failure envelope; ``numeric``: Status 1 whatever the status style (the rest profile)."""

    def success(self, data: dict[str, Any] | None = None, numeric: bool = False, **top: Any) -> dict[str, Any]:
        """A success envelope with ``Data`` and top-level keys ``top``."""


def envelope_status(ok: bool, style: str) -> Any:
    """``"Success"``/``"GeneralError"`` as the guide spells them, or 0/1 in the ``numeric`` style."""
    if style == "numeric":
        return 0 if ok else 1
    return "Success" if ok else "GeneralError"


def failure_envelope(message: str, style: str) -> dict[str, Any]:
    return {"Status": envelope_status(False, style), "UserErrorMessage": message, "TechnicalErrorDetails": None,
            "Data": None}


def success_envelope(data: dict[str, Any] | None, style: str, **top: Any) -> dict[str, Any]:
    return {"Status": envelope_status(True, style), "UserErrorMessage": None, "TechnicalErrorDetails": None,
            "Data": data or {}, **top}


def credentials_ok(body: dict[str, Any], company_id: int, api_key: str) -> bool:
    """Whether ``body["Credentials"]`` names this company (a numeric string counts) and its key."""
    credentials = body.get("Credentials")
    if not isinstance(credentials, dict):
        return False
    company, key = credentials.get("CompanyID"), credentials.get("APIKey")
    if isinstance(company, str) and company.strip().isascii() and company.strip().isdigit():
        company = int(company)
    if isinstance(company, bool) or not isinstance(company, int) or not isinstance(key, str):
        return False
    return company == company_id and hmac.compare_digest(key.encode(), api_key.encode())
