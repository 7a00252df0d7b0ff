"""Thin Airflow operators of crm_revert_run: undo a run's local changes, then (optionally) push
the restored customers to SUMIT.

What passes from one task to the next lives in PostgreSQL: the push reads the customers the
revert restored from the revert run's own journal rows (direction ``revert``), never from XCom,
so any worker can run either task. The return values are the run's counts, for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crmsync.core.summary import SyncCounts
from crmsync.db import revert_store
from crmsync.flows import revert
from crmsync.operators.sync import _as_bool, _CrmSyncOperator, SumitPushOperator


class RevertRunOperator(_CrmSyncOperator):
    """Restore the local values one run changed, for customers nobody changed since (one
    transaction, under the writer lock, journaled as direction ``revert``)."""

    lineage_reads, lineage_writes = ("table",), ("table",)  # the journal, then the customers

    changes_customers = True
    operation = "revert"

    template_fields: Sequence[str] = ("dry_run",)

    def __init__(self, *, dag_run_id_param: str = "dag_run_id", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The run to undo is read from the run's params, not rendered from a template: rendered
        # as a native object, a run id such as "2024" or "1e3" would stop being text.
        self.dag_run_id_param = dag_run_id_param

    def run(self, context: Any) -> dict[str, Any]:
        target = context["params"].get(self.dag_run_id_param)
        with self.locked_store(context) as store:
            if self.nothing_here_yet(store, f"no run is journaled, so {target!r} would be refused"):
                return SyncCounts().to_dict()
            counts = revert.run_revert(store, dag_run_id="" if target is None else str(target), log=self.log)
        return counts.to_dict()


class SumitPushRestoredOperator(SumitPushOperator):
    """Push the customers this revert run restored (their restored columns) to SUMIT, at once.

    Reads them from the run's own journal rows; a customer whose restore changed only custom
    fields or the vanished flag is not sent (crmsync never sends those). With ``enabled``
    false, or in a dry run (which restored nothing), it sends nothing and says why.
    """

    template_fields: Sequence[str] = (*SumitPushOperator.template_fields, "enabled")

    def __init__(self, *, enabled: bool | str = False, **kwargs: Any) -> None:
        super().__init__(customer_ids=None, only_changed=False, **kwargs)
        self.enabled = enabled

    def run(self, context: Any) -> dict[str, Any]:
        if not _as_bool(self.enabled):
            self.log.info("Push skipped: push_reverted is false. The next crm_bidirectional_sync pushes the restored "
                          "customers, since their local values now differ from what was last synced.")
            return SyncCounts().to_dict()
        if _as_bool(self.dry_run):
            self.log.info("Dry run: the revert restored nothing, so nothing is pushed; its log names the customers a "
                          "real run would restore and push.")
            return SyncCounts().to_dict()
        with self.open_store(context) as store:
            ids = revert_store.restored_to_push(store)
        if not ids:
            self.log.info("Nothing to push: this run restored no column of any customer.")
            return SyncCounts().to_dict()
        self.log.info("Pushing the %d customers this run restored: ids %s", len(ids),
                      ", ".join(map(str, ids[:50])) + (" ..." if len(ids) > 50 else ""))
        self.customer_ids = ids  # never empty here: an empty list would mean every customer
        return super().run(context)
