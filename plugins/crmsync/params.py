"""The run params the DAGs offer, as Airflow Params: a bad ``conf`` is refused at trigger time."""

from __future__ import annotations

from airflow.sdk import Param

from crmsync.merge import ConflictPolicy

MAX_IDS = 100_000

_ID_ITEMS = {"type": "integer", "minimum": 1}


def customer_ids_param(*, required: bool) -> Param:
    if required:
        return Param(
            type="array", items=_ID_ITEMS, minItems=1, maxItems=MAX_IDS,
            title="Customer ids",
            description="Local sumit_customers.id values to push, e.g. [1, 2, 3]. Required.",
        )
    return Param(
        [], type="array", items=_ID_ITEMS, maxItems=MAX_IDS,
        title="Customer ids",
        description="Limit the push phase to these local ids. Empty: every customer changed since its last sync.",
    )


def dry_run_param() -> Param:
    return Param(False, type="boolean", title="Dry run",
                 description="Read and report what would change; write nothing to the database or to SUMIT.")


def fail_on_partial_param() -> Param:
    return Param(False, type="boolean", title="Fail on partial failure",
                 description="Fail the run (red) when some records were skipped or refused, instead of a green 'warning'.")


def conflict_policy_param() -> Param:
    return Param(ConflictPolicy.NEWER_WINS.value, type="string", enum=[p.value for p in ConflictPolicy],
                 title="Conflict policy",
                 description="When a customer changed on both sides since the last sync: newer_wins (default), "
                             "crm_wins or local_wins. Every conflict is recorded in crm_sync_conflicts.")
