"""Reading the ``sumit_default`` connection into typed settings (pure, no Airflow import).

Connection fields: host = API base URL, login = CompanyID, password = APIKey, extra = JSON
with ``api_profile`` and the tuning knobs below. Every problem is reported with the
connection id and the field to fix, never with the password's value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from crmsync.errors import ConfigurationError
from crmsync.redact import shorten

DEFAULT_BASE_URL = "https://api.sumit.co.il"
PROFILES = ("guide", "rest")


@dataclass(frozen=True)
class SumitSettings:
    base_url: str
    company_id: int
    api_key: str = field(repr=False)
    api_profile: str = "guide"
    connect_timeout: float = 10.0  # seconds to open a connection
    read_timeout: float = 60.0  # seconds to wait for an answer
    page_size: int = 1000  # customers per listing page (the most SUMIT's rest API allows)
    max_pages: int = 100_000  # a listing longer than this is treated as a broken server
    max_attempts: int = 5  # tries per call for transient faults (1 = no retry)
    backoff_initial: float = 1.0  # seconds before the first retry; doubles each time, with jitter
    backoff_max: float = 30.0  # longest wait between tries (also caps Retry-After)
    push_concurrency: int = 12  # customers pushed at once (per task; the sumit_api pool caps tasks)
    language: str | None = None  # Content-Language for SUMIT's error texts: "he" or "en"
    customers_folder: str | None = None  # rest profile: the customers folder id or application name

    @classmethod
    def from_connection(
        cls,
        conn_id: str,
        *,
        host: str | None,
        login: str | None,
        password: str | None,
        extra: dict[str, Any] | str | None,
        schema: str | None = None,
        port: int | None = None,
    ) -> "SumitSettings":
        where = f"Airflow connection {conn_id!r}"
        if not password:
            raise ConfigurationError(f"{where} has no password: set it to your SUMIT API key.")
        company_id = _company_id(login, where)
        base_url = _base_url(host, schema, port, where)
        options = _extra(extra, where)
        profile = str(options.pop("api_profile", "guide")).strip().lower()
        if profile not in PROFILES:
            raise ConfigurationError(
                f"{where}: extra.api_profile is {profile!r}; supported profiles: {', '.join(PROFILES)}."
            )
        folder = str(options.pop("customers_folder", "") or "").strip() or None
        if profile == "rest" and not folder:
            raise ConfigurationError(
                f"{where}: the rest profile needs extra.customers_folder, the id (or application name) of your "
                "SUMIT customers folder."
            )
        tuning = _tuning(options, where)
        return cls(customers_folder=folder, base_url=base_url, company_id=company_id, api_key=password, api_profile=profile, **tuning)


def _company_id(login: str | None, where: str) -> int:
    text = (login or "").strip()
    # ASCII digits only: str.isdigit() also takes "²" and "١٢", which int() refuses or misreads.
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        shown = repr(shorten(text, 40)) if text else "empty"
        raise ConfigurationError(f"{where}: login must be your numeric SUMIT CompanyID, got {shown}.")
    return int(text)


def _base_url(host: str | None, schema: str | None, port: int | None, where: str) -> str:
    text = (host or "").strip() or DEFAULT_BASE_URL
    if "://" not in text:
        scheme = schema if schema in ("http", "https") else "https"
        text = f"{scheme}://{text}" + (f":{port}" if port else "")
    not_a_url = ConfigurationError(f"{where}: host {host!r} is not an http(s) URL such as {DEFAULT_BASE_URL}.")
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise not_a_url from None
    if parts.username is not None or parts.password is not None:
        # SUMIT takes its credentials in the body; a password in the URL would reach every message naming it.
        raise ConfigurationError(f"{where}: host must not contain a user name or password; "
                                 "the API key belongs in the password field.")
    # A space or control character is no URL; urlsplit would quietly drop tabs and newlines.
    if parts.scheme not in ("http", "https") or not parts.hostname or not text.isprintable() or " " in text:
        raise not_a_url
    try:
        parts.port  # noqa: B018 - raises on a non-numeric port
    except ValueError:
        raise ConfigurationError(f"{where}: host {host!r} has an invalid port.") from None
    return text.rstrip("/")


def _extra(extra: dict[str, Any] | str | None, where: str) -> dict[str, Any]:
    if not extra:
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            raise ConfigurationError(f"{where}: extra is not valid JSON.") from None
    if not isinstance(extra, dict):
        raise ConfigurationError(f"{where}: extra must be a JSON object.")
    return _form_fields_as_keys(extra)


_FORM_PREFIX = "extra__sumit__"


def _form_fields_as_keys(extra: dict[str, Any]) -> dict[str, Any]:
    """The extra as plain keys, whichever way the connection form wrote it.

    Airflow 3's form stores its fields under their plain names, and a field left empty as
    ``null`` (or ``""``): an empty field means "the default", not a value. Connections made
    by Airflow 2's form carry the same fields as ``extra__sumit__<name>``; a plain key wins
    over its prefixed twin.
    """
    def given(value: Any) -> bool:
        return value is not None and not (isinstance(value, str) and not value.strip())

    options = {key[len(_FORM_PREFIX):]: value for key, value in extra.items()
               if key.startswith(_FORM_PREFIX) and given(value)}
    options.update((key, value) for key, value in extra.items() if not key.startswith(_FORM_PREFIX) and given(value))
    return options


def _tuning(options: dict[str, Any], where: str) -> dict[str, Any]:
    known = {f.name: f for f in fields(SumitSettings)}
    result: dict[str, Any] = {}
    for key, value in options.items():
        if key not in known or key in ("base_url", "company_id", "api_key", "api_profile"):
            continue  # unknown keys are ignored, as Airflow does for other providers' extras
        if key == "language":
            result[key] = None if value in (None, "") else str(value)
            continue
        kind = int if known[key].type == "int" else float
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{where}: extra.{key} must be a number, got {value!r}.") from None
        smallest_allowed = 0 if key == "backoff_initial" else 1e-9  # only the first backoff may be zero
        if number < smallest_allowed:
            raise ConfigurationError(f"{where}: extra.{key} must be positive, got {value!r}.")
        result[key] = number
    return result
