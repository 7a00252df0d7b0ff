"""What every API profile provides, and the envelope rules all SUMIT endpoints share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import msgspec

from crmsync.core.errors import SumitAuthError, SumitPermanentError
from crmsync.core.model import CrmCustomer, LocalCustomer, PushResult
from crmsync.core.pulled import RecordIds

# SUMIT reports a refused CompanyID/APIKey as an ordinary failure envelope; these words
# (English and Hebrew) tell it apart from a validation error so it can fail the whole run.
_AUTH_WORDS = re.compile(r"credential|api ?key|companyid|unauthori[sz]ed|not authori[sz]ed|הרשאה|פרטי הזדהות|מפתח", re.I)


T = TypeVar("T")


@dataclass(frozen=True)
class Listing:
    """One page of a listing answer, before decoding. ``raw``: the records are ``msgspec.Raw``,
    each one's JSON as SUMIT sent it (a profile's ``parse_raw_list``), parsed only when mapped."""

    records: list[Any]
    has_next: bool
    raw: bool = False
    ids: tuple[str | None, ...] | None = None  # the records' CRM ids, when the profile read them already


class ApiProfile(Protocol):
    name: str
    creates_are_idempotent: bool  # False: a create whose answer was lost must be looked up first

    def list_request(self, start: int, size: int) -> tuple[str, dict[str, Any]]:
        """Endpoint path and body (without Credentials) for one listing page."""

    def parse_list(self, answer: dict[str, Any], endpoint: str) -> Listing:
        """The records and the has-next flag of a listing answer; ProtocolError when absent."""

    def decode_customer(self, raw: Any) -> CrmCustomer:
        """A wire record as a CrmCustomer; InvalidRecord when it cannot be synced."""

    def push_request(self, customer: LocalCustomer) -> tuple[str, dict[str, Any]]:
        """Endpoint path and body (without Credentials) that send one local customer."""

    def is_idempotent(self, customer: LocalCustomer) -> bool:
        """Whether sending this customer twice leaves SUMIT as sending it once (safe to retry)."""

    def parse_push(self, answer: dict[str, Any], endpoint: str) -> PushResult:
        """The CRM id in a push answer, if any."""


def is_success(status: Any) -> bool:
    """SUMIT says success as ``"Success"`` in the guide and ``0`` in the published API."""
    if isinstance(status, bool):
        return False
    if isinstance(status, (int, float)):
        return status == 0
    return isinstance(status, str) and status.strip().lower() in ("success", "0")


def check_envelope(answer: dict[str, Any], endpoint: str) -> None:
    """Raise the right error when the envelope says failure."""
    status = answer.get("Status")
    if is_success(status):
        return
    message = answer.get("UserErrorMessage") or answer.get("TechnicalErrorDetails") or f"Status {status!r}"
    message = str(message)
    if _AUTH_WORDS.search(message):
        raise SumitAuthError(
            f"SUMIT refused the credentials on {endpoint}: {message}. "
            "Check the CompanyID (login) and API key (password) of the sumit connection.",
            endpoint=endpoint,
        )
    raise SumitPermanentError(f"SUMIT rejected the request on {endpoint}: {message}", endpoint=endpoint)


def records_ids(records: Sequence[Any]) -> tuple[str | None, ...]:
    """The CRM id of each record (crmsync.core.pulled.RecordIds; None: none, or not an object)."""
    return tuple(r.id() if type(r) is RecordIds else None for r in records)


def raw_listing(content: bytes, shape: type[T]) -> T | None:
    """A listing answer decoded as ``shape`` (a msgspec Struct whose records are ``msgspec.Raw``:
    each record's JSON as sent, not parsed), or None when the answer does not have that shape;
    the hook then decodes it in full, as before, and any error is reported from there."""
    try:
        return msgspec.json.decode(content, type=shape)
    except (msgspec.MsgspecError, ValueError):
        return None


def data_section(answer: dict[str, Any]) -> dict[str, Any]:
    data = answer.get("Data")
    return data if isinstance(data, dict) else {}
