"""crmsync: keep a PostgreSQL customers table and SUMIT CRM in step (Airflow 3)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Read when asked for (importlib.metadata pulls in email and socket: the pure layer imports
    # crmsync without them).
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("crmsync")
        except PackageNotFoundError:  # the plugins folder on sys.path, never installed
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
