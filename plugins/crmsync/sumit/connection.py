"""Reading the ``sumit`` connection's fields (pure, no Airflow import).

Connection fields: host = API base URL, login = CompanyID, password = APIKey, extra = JSON
with ``api_profile`` and the tuning knobs of :class:`SumitSettings`, plus the transport
options HTTP connections take (``proxies``, ``verify``, ``cert``, ``trust_env``), which
:func:`http_options` checks and SumitHook hands to the http provider's ``HttpHook``. Every
problem is reported with the connection id and the field to fix, never with the password's
value.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from crmsync.core.errors import ConfigurationError
from crmsync.sumit.redact import shorten

DEFAULT_BASE_URL = "https://api.sumit.co.il"
PROFILES = ("guide", "rest")
# rest profile: the customers-folder property carrying each column SUMIT has no typed customer
# field for (extra.property_fields overrides them one by one; None: the folder has none).
DEFAULT_PROPERTY_FIELDS: dict[str, str | None] = {"company_name": "CompanyName", "state": "State", "country": "Country"}


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
    # customers pushed at once per task (the sumit_api pool caps tasks); twice that until SUMIT's
    # first 429 (crmsync.sumit.budget.BURST)
    push_concurrency: int = 12
    read_concurrency: int = 8  # listing pages requested at once by a pull (1: one page at a time)
    max_requests_per_second: float | None = None  # per task, from the first call; None: only after 429s
    language: str | None = None  # Content-Language for SUMIT's error texts: "he" or "en"
    customers_folder: str | None = None  # rest profile: the customers folder id or application name
    # rest profile: column -> folder property carrying it, None for none (see DEFAULT_PROPERTY_FIELDS)
    property_fields: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_PROPERTY_FIELDS))

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
        property_fields = _property_fields(options.pop("property_fields", None), where)
        tuning = _tuning(options, where)
        return cls(customers_folder=folder, base_url=base_url, company_id=company_id, api_key=password, api_profile=profile,
                   property_fields=property_fields, **tuning)


def _property_fields(value: Any, where: str) -> dict[str, str | None]:
    """extra.property_fields: which customers-folder property carries company_name, state and
    country under the rest profile, e.g. ``{"company_name": "שם חברה", "state": null}``; a column
    not named keeps its default, one mapped to null (or "") is neither read nor sent."""
    result = dict(DEFAULT_PROPERTY_FIELDS)
    if value is None:
        return result
    what = f"{where}: extra.property_fields"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise ConfigurationError(f'{what} must be an object such as {{"company_name": "CompanyName", "state": null}}.')
    for column, prop in value.items():
        if column not in DEFAULT_PROPERTY_FIELDS:
            raise ConfigurationError(f"{what}.{column}: only {', '.join(DEFAULT_PROPERTY_FIELDS)} travel as folder "
                                     "properties (the other columns have typed SUMIT fields).")
        if prop is not None and not isinstance(prop, str):
            raise ConfigurationError(f"{what}.{column} must be a property name or null (no such property), "
                                     f"not {prop!r}.")
        name = (prop or "").strip() or None
        if name is not None and (name in ("ID", "Folder") or name.startswith("Customers_")):
            raise ConfigurationError(f"{what}.{column} is {name!r}, a property SUMIT already uses for something else.")
        result[column] = name
    taken = [prop for prop in result.values() if prop]
    for prop in taken:
        if taken.count(prop) > 1:
            raise ConfigurationError(f"{what}: the property {prop!r} is named for two columns.")
    return result


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
        if key in _UPPER_BOUNDS and number > _UPPER_BOUNDS[key]:
            raise ConfigurationError(f"{where}: extra.{key} must be between 1 and {_UPPER_BOUNDS[key]}, got {value!r}.")
        result[key] = number
    return result


# Upper bounds of tuning extras where more is no longer a setting but a mistake.
_UPPER_BOUNDS = {"read_concurrency": 16}  # pages of up to 1,000 customers held at once, and requests at once


# crmsync's own extra keys: read into SumitSettings, never sent anywhere (in particular never
# as HTTP headers, where HttpHook puts the extra keys it does not know).
# ``match_keys`` is read by the sync (crmsync.core.matching), not by the hook: never a header either.
SUMIT_EXTRA_KEYS = (frozenset(f.name for f in fields(SumitSettings)) - {"base_url", "company_id", "api_key"}
                    | {"match_keys"})
# The transport options of HTTP connections (apache-airflow-providers-http) that mean something
# for SUMIT's JSON-over-POST API; HttpHook applies them to the requests session.
HTTP_EXTRA_KEYS = ("proxies", "verify", "cert", "trust_env")
# HttpHook's other options: no use here (crmsync has its own timeouts, retries and answer
# checks), so they are neither applied nor sent as headers.
_UNUSED_HTTP_KEYS = frozenset({"proxy", "verify_ssl", "stream", "timeout", "allow_redirects", "max_redirects",
                               "check_response", "srv_lookup"})


def http_options(extra: dict[str, Any] | str | None, conn_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(transport options for HttpHook, extra HTTP headers) from the connection's extra.

    ``verify`` is true (the default: the system's certificate authorities), false, or the path
    of a CA bundle; ``cert`` a client certificate file, or [certificate, key]; ``proxies`` a map
    such as ``{"https": "http://proxy:3128"}``; ``trust_env`` whether HTTP(S)_PROXY and
    REQUESTS_CA_BUNDLE from the environment count (default true). Any other key that is
    neither crmsync's own nor one of these is sent as an HTTP header, as HTTP connections do.
    """
    where = f"Airflow connection {conn_id!r}"
    options = _extra(extra, where)
    transport: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for key, value in options.items():
        if key in SUMIT_EXTRA_KEYS or key in _UNUSED_HTTP_KEYS:
            continue
        if key == "verify":
            transport[key] = _verify(value, where)
        elif key == "trust_env":
            transport[key] = _flag(value, f"{where}: extra.trust_env")
        elif key == "cert":
            transport[key] = _cert(value, where)
        elif key == "proxies":
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in value.items()):
                raise ConfigurationError(f'{where}: extra.proxies must be an object such as '
                                         f'{{"https": "http://proxy.example:3128"}}.')
            transport[key] = dict(value)
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            headers[str(key)] = str(value)
        else:
            raise ConfigurationError(f"{where}: extra.{key} is not a setting crmsync knows, and not text, so it "
                                     "cannot be sent as an HTTP header either.")
    return transport, headers


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ConfigurationError(f"{what} must be true or false, got {value!r}.")


def _existing_file(path: Any, what: str) -> str:
    text = str(path).strip()
    if not os.path.isfile(text):
        raise ConfigurationError(f"{what} is {text!r}, which is not a readable file on this worker.")
    return text


def _verify(value: Any, where: str) -> bool | str:
    """True, False, or a CA bundle path that exists (checked now: a typo fails before any call)."""
    if isinstance(value, bool) or str(value).strip().lower() in ("true", "false"):
        return _flag(value, f"{where}: extra.verify")
    return _existing_file(value, f"{where}: extra.verify (a CA bundle)")


def _cert(value: Any, where: str) -> str | tuple[str, str]:
    if isinstance(value, list) and len(value) == 2:
        return (_existing_file(value[0], f"{where}: extra.cert[0] (the client certificate)"),
                _existing_file(value[1], f"{where}: extra.cert[1] (its key)"))
    if isinstance(value, str):
        return _existing_file(value, f"{where}: extra.cert (the client certificate)")
    raise ConfigurationError(f"{where}: extra.cert must be a file path, or [certificate path, key path].")
