"""Thin Airflow operators of crm_resolve_conflicts: keep one side of recorded conflicts, then
push the rewritten customers to SUMIT.

What passes from one task to the next lives in PostgreSQL: the push reads the customers the
resolve rewrote from the resolve run's own journal rows (direction ``resolve``), never from
XCom, so any worker can run either task. The return values are the run's counts, for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crmsync.core.summary import SyncCounts
from crmsync.db import conflict_store
from crmsync.flows import conflicts
from crmsync.operators.sync import _as_bool, _CrmSyncOperator, SumitPushOperator


class ResolveConflictsOperator(_CrmSyncOperator):
    """Keep side ``keep`` of the named conflicts (one transaction, under the writer lock,
    journaled as direction ``resolve``); mark them resolved."""

    lineage_reads, lineage_writes = ("table",), ("table",)

    changes_customers = True
    operation = "resolve"

    template_fields: Sequence[str] = ("dry_run",)

    def __init__(self, *, conflict_ids_param: str = "conflict_ids", keep_param: str = "keep", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Read from the run's params, validated by Airflow, not rendered from templates.
        self.conflict_ids_param = conflict_ids_param
        self.keep_param = keep_param

    def run(self, context: Any) -> dict[str, Any]:
        params = context["params"]
        ids = params.get(self.conflict_ids_param) or []
        keep = str(params.get(self.keep_param) or "")
        rules = self.field_rules()  # the CRM's side is what a pull takes of it under the rules in force
        hook = self.sumit_hook()
        try:
            # Columns the API profile does not carry hold placeholders in the CRM's version: reads
            # the connection only, calls nothing.
            not_carried = frozenset(getattr(hook.profile, "not_carried", frozenset()))
        finally:
            hook.close()
        with self.locked_store(context) as store:
            if self.nothing_here_yet(store, f"no conflict is recorded, so {list(ids)} would be refused"):
                return SyncCounts().to_dict()
            counts = conflicts.run_resolve(store, conflict_ids=[int(i) for i in ids], keep=keep, rules=rules,
                                           not_carried=not_carried, log=self.log)
        return counts.to_dict()


class SumitPushResolvedOperator(SumitPushOperator):
    """Push the customers this resolve run rewrote (their chosen values) to SUMIT, at once.

    Reads them from the run's own journal rows; keeping the winner rewrites nothing, so nothing
    is sent. In a dry run (which rewrote nothing) it sends nothing and says why.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(customer_ids=None, only_changed=False, **kwargs)

    def run(self, context: Any) -> dict[str, Any]:
        if _as_bool(self.dry_run):
            self.log.info("Dry run: the resolve rewrote nothing, so nothing is pushed; its log names the customers a "
                          "real run would rewrite and push.")
            return SyncCounts().to_dict()
        with self.open_store(context) as store:
            ids = conflict_store.rewritten_to_push(store)
        if not ids:
            self.log.info("Nothing to push: this run rewrote no column of any customer (keeping the winner writes "
                          "nothing).")
            return SyncCounts().to_dict()
        self.log.info("Pushing the %d customers this run rewrote: ids %s", len(ids),
                      ", ".join(map(str, ids[:50])) + (" ..." if len(ids) > 50 else ""))
        self.customer_ids = ids  # never empty here: an empty list would mean every customer
        return super().run(context)
