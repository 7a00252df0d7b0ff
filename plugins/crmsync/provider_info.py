"""What crmsync tells Airflow about itself: the ``sumit`` connection type and its UI form.

Airflow 3 discovers this through the ``apache_airflow_provider`` entry point (pyproject.toml).
Since Airflow 3.2 the form is declared here, as data (``conn-fields`` and
``ui-field-behaviour``), rather than by the hook's ``get_connection_form_widgets`` /
``get_ui_field_behaviour`` classmethods, which 3.2 deprecated and which Airflow does not even
call when the provider info declares the form. The UI stores each field under its plain name
in the connection's ``extra`` (``{"api_profile": "rest", ...}``), the same keys docs/connections.md
documents and crmsync.settings reads; keys the form does not offer (``max_attempts``,
``backoff_*``, ...) are still typed into the Extra JSON.
"""

from __future__ import annotations

from typing import Any

from crmsync import __version__
from crmsync.sumit.connection import DEFAULT_BASE_URL, PROFILES

SUMIT_HOOK = "crmsync.hooks.sumit.SumitHook"


def _number(label: str, description: str, default: float, kind: str = "integer", minimum: float = 1) -> dict[str, Any]:
    return {"label": label, "description": description,
            "schema": {"type": [kind, "null"], "default": default, "minimum": minimum}}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "api_profile": {
        "label": "API profile",
        "description": "guide: the synchronization guide's endpoints; rest: SUMIT's published REST API "
                       "(needs the customers folder).",
        "schema": {"type": ["string", "null"], "enum": list(PROFILES), "default": "guide"},
    },
    "customers_folder": {
        "label": "Customers folder",
        "description": "rest profile only (required there): the id or application name of your SUMIT customers "
                       "folder.",
        "schema": {"type": ["string", "null"]},
    },
    "connect_timeout": _number("Connect timeout (s)", "Seconds to open a connection.", 10, "number", 0.001),
    "read_timeout": _number("Read timeout (s)", "Seconds to wait for an answer.", 60, "number", 0.001),
    "page_size": _number("Page size", "Customers per listing page (the rest profile keeps it within 10-1000).", 1000),
    "push_concurrency": _number("Push concurrency", "Customers pushed at once by one task (the sumit_api pool "
                                "limits tasks).", 12),
    "language": {
        "label": "Error language",
        "description": "Language of SUMIT's error texts.",
        "schema": {"type": ["string", "null"], "enum": [None, "he", "en"]},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {"host": "SUMIT API base URL", "login": "Company ID", "password": "API key"},
    "placeholders": {"host": DEFAULT_BASE_URL, "login": "your numeric SUMIT CompanyID",
                     "password": "SUMIT API key (Settings > API)"},
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "crmsync",
        "name": "crmsync (SUMIT CRM)",
        "description": "Sync customers between PostgreSQL and SUMIT CRM: the `sumit` connection type and SumitHook.",
        "versions": [__version__],  # the installed distribution's, from its metadata
        "hooks": [{"integration-name": "SUMIT CRM", "python-modules": ["crmsync.hooks.sumit"]}],
        "connection-types": [
            {
                "connection-type": "sumit",
                "hook-class-name": SUMIT_HOOK,
                "hook-name": "SUMIT CRM",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
