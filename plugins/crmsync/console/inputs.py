"""What the console accepts, checked at the edge (no web framework here: plain values).

Every integer a request carries has a range PostgreSQL can hold (a local id is a ``bigint``,
a page number times the page size must stay one), every text a length and no NUL character
(PostgreSQL's text cannot hold one), and a run's ``conf`` a size. A refused value is a ``400``
page or a ``422`` JSON answer naming the parameter (console/app.py): never a ``500``, and
nothing is read, written or started for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

MAX_BIGINT = 2**63 - 1  # PostgreSQL's bigint
MAX_ID = 2**53 - 1  # a local id or an error id: the largest whole number the console's JavaScript holds exactly
MAX_PAGE = 1_000_000  # a Customers page number (1,000,000 pages of 500 is far past any table)
MAX_DAYS = 366  # the Runs page's window
MAX_SEARCH_LENGTH = 200  # the Customers search
MAX_ID_TEXT = 250  # a DAG id or a DAG run id (Airflow's own limit for both)
MAX_CONF_BYTES = 64_000  # a run's conf, as JSON
MAX_CONF_DEPTH = 16
NO_NUL = r"^[^\x00]*$"  # the pattern every free text declares (PostgreSQL's text holds no NUL)

API_PREFIX = "/api/"


def check_conf(conf: Mapping[str, Any]) -> Mapping[str, Any]:
    """A run's conf as Airflow will store it: JSON of at most MAX_CONF_BYTES, no NUL in any
    key or text, nested at most MAX_CONF_DEPTH deep. Raises ValueError with the reason."""
    try:
        size = len(json.dumps(conf, ensure_ascii=False, allow_nan=False).encode())
    except ValueError:
        raise ValueError("conf holds a number JSON cannot carry (NaN or infinity)") from None
    if size > MAX_CONF_BYTES:
        raise ValueError(f"conf is {size:,} bytes as JSON, more than {MAX_CONF_BYTES:,}")
    _walk(conf, 0)
    return conf


def _walk(value: Any, depth: int) -> None:
    if depth > MAX_CONF_DEPTH:
        raise ValueError(f"conf is nested more than {MAX_CONF_DEPTH} levels deep")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("conf holds a text with a NUL character")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _walk(str(key), depth)
            _walk(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _walk(item, depth + 1)


def whole_number(value: Any) -> Any:
    """JSON's 1.0 is the whole number 1 (JSON has one kind of number); anything else as it came."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def refusals(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    """Pydantic's validation errors as lines a person reads: ``page: must be at most 1000000``."""
    return [f"{parameter(e.get('loc', ()))}: {_words(e)}" for e in errors]


def parameter(loc: Iterable[Any]) -> str:
    """``("query", "page")`` → ``page``; ``("body", "error_ids", 0)`` → ``error_ids[0]``."""
    parts = list(loc)
    if parts and parts[0] in ("query", "path", "body", "header", "cookie"):
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "the request body"


def _words(error: Mapping[str, Any]) -> str:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NO_NUL:
        return "must not contain a NUL character"
    words = {
        "missing": "is required",
        "int_parsing": "must be a whole number",
        "int_type": "must be a whole number",
        "greater_than_equal": f"must be {ctx.get('ge')} or more",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
        "string_too_short": f"must be at least {ctx.get('min_length')} character(s)",
        "too_long": f"may name at most {ctx.get('max_length')} items",
        "too_short": f"must name at least {ctx.get('min_length')} item(s)",
        "json_invalid": "is not valid JSON",
        "literal_error": f"must be one of {ctx.get('expected')}",
        "model_attributes_type": "must be a JSON object",
        "dict_type": "must be a JSON object",
        "list_type": "must be a JSON list",
        "string_type": "must be a text",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
    }.get(kind)
    if words:
        return words
    message = str(error.get("msg", "is not valid"))
    return message.removeprefix("Value error, ")


def clean_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's 422 body (``loc``, ``msg``, ``type``) without the refused input echoed back (a
    2 MB body, a token) and with ``msg`` in the console's words."""
    return [{"loc": list(e.get("loc", ())), "msg": _words(e), "type": e.get("type", "value_error")} for e in errors]
