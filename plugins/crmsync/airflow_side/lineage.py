"""What crmsync's tasks tell OpenLineage (Airflow's ``openlineage`` provider calls each
operator's ``get_openlineage_facets_on_complete`` / ``_on_failure``; nothing here runs when
the provider is not installed or not configured).

Two datasets, named the way lineage tools already know them:

- SUMIT's customers: namespace the ``sumit`` connection's base URL (scheme, host and port:
  never the key, which lives in the password), name ``customers`` (the guide's customers
  list) or ``customers/<folder>`` (the ``rest`` profile's customers folder);
- the table: the postgres provider's naming, namespace ``postgres://host:port``, name
  ``<database>.public.sumit_customers`` (the same table the ``sumit_customers`` asset names),
  with its schema (column names and types) and its row count.

A task's counts travel as the run facet ``crmsync`` (operation, dry run, fetched, created,
updated, pushed, failed, conflicts, changed, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from crmsync.airflow_side.metrics import COUNTS
from crmsync.sumit.connection import DEFAULT_BASE_URL

TABLE = "sumit_customers"
TABLE_SCHEMA = "public"
FACET_SCHEMA_URL = "https://crmsync.invalid/spec/facets/1-0-0/CrmSyncRunFacet.json#/$defs/CrmSyncRunFacet"
DEFAULT_PORTS = {"http": 80, "https": 443}


def sumit_namespace(host: str | None) -> str:
    """``https://api.sumit.co.il:443``: the base URL's scheme, host and port, nothing else."""
    parts = urlsplit((host or DEFAULT_BASE_URL).strip())
    if not parts.scheme or not parts.hostname:
        parts = urlsplit(f"https://{(host or '').strip()}")
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def sumit_name(extra: Mapping[str, Any]) -> str:
    folder = str(extra.get("customers_folder") or "").strip()
    if str(extra.get("api_profile") or "guide").strip() == "rest" and folder:
        return f"customers/{folder}"
    return "customers"


def table_namespace(host: str | None, port: int | None) -> str:
    return f"postgres://{host or 'localhost'}:{port or 5432}"


def table_name(database: str | None) -> str:
    return f"{database or 'postgres'}.{TABLE_SCHEMA}.{TABLE}"


def _facet_classes() -> Any:
    from openlineage.client.facet_v2 import RunFacet

    @attrs.define
    class CrmSyncRunFacet(RunFacet):
        """crmsync's counts for one task run."""

        operation: str
        dry_run: bool = False
        counts: dict[str, int] = attrs.field(factory=dict)

        @staticmethod
        def _get_schema() -> str:
            return FACET_SCHEMA_URL

    return CrmSyncRunFacet


def nothing() -> Any:
    """The lineage of a task that reads and writes no data (the provider would warn about None)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage()


def operator_lineage(*, reads: Sequence[str], writes: Sequence[str], sumit: Mapping[str, Any],
                     table: Mapping[str, Any], counts: Mapping[str, Any] | None, operation: str,
                     dry_run: bool) -> Any:
    """The OperatorLineage of one task: ``reads``/``writes`` name ``"sumit"`` and ``"table"``;
    ``sumit`` holds the connection's host and extra, ``table`` the table's host, port, database,
    columns (name, type) and row count (None when unknown)."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import (data_quality_metrics_input_dataset, output_statistics_output_dataset,
                                             schema_dataset)

    schema = schema_dataset.SchemaDatasetFacet(fields=[
        schema_dataset.SchemaDatasetFacetFields(name=name, type=kind) for name, kind in table.get("columns", ())])
    rows = table.get("rows")
    written = sum(int((counts or {}).get(k) or 0) for k in ("created", "updated", "linked", "vanished"))

    def sumit_dataset(kind: type) -> Any:
        return kind(namespace=sumit_namespace(sumit.get("host")), name=sumit_name(sumit.get("extra") or {}))

    def table_input() -> Any:
        facets = {"schema": schema} if schema.fields else {}
        input_facets = {} if rows is None else {
            "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
                rowCount=rows, columnMetrics={})}
        return InputDataset(namespace=table_namespace(table.get("host"), table.get("port")),
                            name=table_name(table.get("database")), facets=facets, inputFacets=input_facets)

    def table_output() -> Any:
        facets = {"schema": schema} if schema.fields else {}
        output_facets = {} if counts is None else {
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=written)}
        return OutputDataset(namespace=table_namespace(table.get("host"), table.get("port")),
                             name=table_name(table.get("database")), facets=facets, outputFacets=output_facets)

    made = {("sumit", "in"): lambda: sumit_dataset(InputDataset), ("sumit", "out"): lambda: sumit_dataset(OutputDataset),
            ("table", "in"): table_input, ("table", "out"): table_output}
    facet = _facet_classes()(operation=operation, dry_run=dry_run, counts={
        name: int(value) for name, value in (counts or {}).items()
        if name in COUNTS and isinstance(value, int) and not isinstance(value, bool)})
    return OperatorLineage(inputs=[made[(name, "in")]() for name in reads],
                           outputs=[made[(name, "out")]() for name in writes],
                           run_facets={"crmsync": facet})
