"""crmsync's DAGs, shipped in the package: each module here defines one DAG as ``dag``.

A deployment that installed crmsync gets them into its dags folder with one file holding one
line (docs/installing.md):

    from crmsync.dags import *  # noqa: F403  crmsync's Airflow DAGs

which binds every crmsync DAG below by its id (Airflow collects the DAG objects a file's
module holds). The example downstream DAG, ``crm_export_changed_customers``, is left out of
``*``: a deployment that wants it adds ``from crmsync.dags.export_changed_customers import dag``
in a file of its own. This repository's ``dags/`` holds one such line per DAG.

The modules are imported when a name is asked for, so a file that imports one DAG does not
build the other eight.
"""

from __future__ import annotations

import importlib
from typing import Any

# DAG id -> module (in crmsync.dags) defining it as ``dag``
DAG_MODULES: dict[str, str] = {
    "crm_pull_customers": "pull",
    "crm_push_customers": "push",
    "crm_bidirectional_sync": "bidirectional_sync",
    "crm_revert_run": "revert_run",
    "crm_resolve_conflicts": "resolve_conflicts",
    "crm_apply_crm_events": "apply_crm_events",
    "crm_sumit_triggers": "sumit_triggers",
    "crm_link_customers": "link_customers",
    "crm_export_changed_customers": "export_changed_customers",
}
EXAMPLE_DAGS = ("crm_export_changed_customers",)
__all__ = [dag_id for dag_id in DAG_MODULES if dag_id not in EXAMPLE_DAGS]


def __getattr__(name: str) -> Any:
    module = DAG_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{module}").dag
