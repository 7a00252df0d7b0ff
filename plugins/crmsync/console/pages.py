"""The console's HTML (pure rendering, no Airflow, no web framework): Jinja2 templates with
autoescape on, so every value from the CRM or the table is shown as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape

from crmsync.console.charts import runs_chart
from crmsync.console.outcome import PUSH_DAG, STATE_LABELS, SYNC_STATES
from crmsync.console.queries import SEARCH_COUNT_LIMIT, ConsoleQueries, CustomerQuery

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
    # a search counts its matches up to SEARCH_COUNT_LIMIT: past it, "more than 1,000"
    more = query.counted() and total > SEARCH_COUNT_LIMIT
    total = min(total, SEARCH_COUNT_LIMIT) if more else total
    pages = max((total + query.page_size - 1) // query.page_size, 1)
    return {"rows": rows, "total": total, "more": more, "query": query, "pages": pages}


def render_customers(values: dict[str, Any], root: str = MOUNT) -> str:
    query = values["query"]

    def link(page_number: int) -> str:
        params = {k: v for k, v in (("q", query.search), ("state", query.state), ("page", page_number)) if v}
        return f"{root}/customers?{urlencode(params)}"

    return render("customers.html", root=root, tab="customers", link=link, **values)


# -- the other lists: what each page shows (`make bench` times these with the rendering) ------------


def runs_page_values(queries: ConsoleQueries, days: int = 28) -> dict[str, Any]:
    rows = queries.runs(days)
    return {"runs": rows, "chart": runs_chart(rows, queries.retry_queue_series(days)), "days": days,
            "inbox": queries.inbox(days)}


ERROR_VIEWS = {"queued": ("pending", "gave_up"), "pending": ("pending",), "gave_up": ("gave_up",), "ignored": ("ignored",)}


def errors_page_values(queries: ConsoleQueries, show: str = "queued") -> dict[str, Any]:
    return {"errors": queries.errors(ERROR_VIEWS[show], page_size=200), "counts": queries.error_counts(), "show": show}


def conflicts_page_values(queries: ConsoleQueries) -> dict[str, Any]:
    rows, total = queries.conflicts(page_size=100)
    for row in rows:
        keys = sorted(set(row["local_values"]) | set(row["crm_values"]))
        row["fields"] = [(k, row["local_values"].get(k), row["crm_values"].get(k)) for k in keys]
    return {"conflicts": rows, "total": total}


MATCH_FIELDS = (("name", "Name"), ("email", "E-mail"), ("tax_id", "Tax id"), ("phone", "Phone"), ("city", "City"))


def matches_page_values(queries: ConsoleQueries) -> dict[str, Any]:
    rows, total = queries.matches(page_size=200)
    return {"groups": match_groups(rows), "total": total, "fields": MATCH_FIELDS}


def match_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The held records grouped by the value that made them ambiguous: each group's local and
    CRM customers side by side (the held ones and their candidates), and its held records' ids."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault((row["match_key"], row["match_value"]), {
            "key": row["match_key"], "value": row["match_value"], "local": {}, "crm": {}, "held": [],
            "held_at": row["held_at"]})
        mine, theirs = ("local", "crm") if row["side"] == "local" else ("crm", "local")
        ident = "customer_id" if mine == "local" else "sumit_customer_id"
        group[mine][str(row["held"][ident])] = row["held"]
        for candidate in row["candidates"] or []:
            other = "customer_id" if theirs == "local" else "sumit_customer_id"
            group[theirs].setdefault(str(candidate[other]), candidate)
        group["held"].append({"id": row["id"], "side": row["side"], "ident": row["held"][ident],
                              "name": row["held"].get("name")})
    return list(groups.values())
