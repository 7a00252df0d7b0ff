"""The console's HTML (pure rendering, no Airflow, no web framework): Jinja2 templates with
autoescape on, so every value from the CRM or the table is shown as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape

from crmsync.console.outcome import PUSH_DAG, STATE_LABELS, SYNC_STATES
from crmsync.console.queries import ConsoleQueries, CustomerQuery

HERE = Path(__file__).resolve().parent
MOUNT = "/crmsync"

templates = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                        autoescape=select_autoescape(default=True, default_for_string=True))
templates.filters["thousands"] = lambda n: f"{int(n or 0):,}"


def airflow_root(root: str) -> str:
    """Airflow's own UI root, from the console's mount point (``/crmsync``, or ``/<base>/crmsync``)."""
    return root[: -len(MOUNT)] if root.endswith(MOUNT) else ""


def render(template: str, *, root: str = MOUNT, tab: str = "", **values: Any) -> str:
    return templates.get_template(template).render(
        root=root, airflow=airflow_root(root), tab=tab, states=SYNC_STATES, state_labels=STATE_LABELS,
        push_dag=PUSH_DAG, **values)


def customers_page_values(queries: ConsoleQueries, query: CustomerQuery) -> dict[str, Any]:
    """Everything the Customers page shows (`make bench` times this with the rendering)."""
    rows, total = queries.customers(query)
    pages = max((total + query.page_size - 1) // query.page_size, 1)
    return {"rows": rows, "total": total, "query": query, "pages": pages}


def render_customers(values: dict[str, Any], root: str = MOUNT) -> str:
    query = values["query"]

    def link(page_number: int) -> str:
        params = {k: v for k, v in (("q", query.search), ("state", query.state), ("page", page_number)) if v}
        return f"{root}/customers?{urlencode(params)}"

    return render("customers.html", root=root, tab="customers", link=link, **values)
