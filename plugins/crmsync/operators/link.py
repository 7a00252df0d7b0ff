"""A person's match decisions (crm_link_customers): link, separate, unlink; then the push of
what the linked CRM customers lack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crmsync.core.merge import ConflictPolicy
from crmsync.core.summary import SyncCounts
from crmsync.flows import link
from crmsync.operators.sync import SumitPushOperator, _as_bool, _CrmSyncOperator

PUSH_XCOM_KEY = "to_push"


class LinkCustomersOperator(_CrmSyncOperator):
    """Apply the run's ``links``, ``separate`` and ``unlink`` params (one transaction, under the
    writer lock, journaled as direction ``link``); refuse them all, writing nothing, when one is
    wrong. Returns the counts; the ids the push then updates go to XCom (key ``to_push``)."""

    lineage_reads, lineage_writes = ("table",), ("table",)

    changes_customers = True
    operation = "link"

    template_fields: Sequence[str] = ("dry_run", "conflict_policy")

    def __init__(self, *, conflict_policy: str = ConflictPolicy.NEWER_WINS.value, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conflict_policy = conflict_policy

    def run(self, context: Any) -> dict[str, Any]:
        params = context["params"]  # read as given: a CRM id such as "0012" must stay text
        links = [(pair[0], pair[1]) for pair in params.get("links") or []]
        separate, unlink = list(params.get("separate") or []), list(params.get("unlink") or [])
        if not (links or separate or unlink):
            self.log.info("Nothing to decide: links, separate and unlink are all empty.")
            return SyncCounts().to_dict()
        rules = self.field_rules()
        with self.locked_store(context) as store:
            if self.nothing_here_yet(store, "no customer is held for a match decision, so these decisions would be "
                                            "refused"):
                return SyncCounts().to_dict()
            counts, to_push = link.run_link(store, links=links, separate=separate, unlink=unlink,
                                            policy=ConflictPolicy.parse(self.conflict_policy), rules=rules,
                                            log=self.log)
        context["ti"].xcom_push(key=PUSH_XCOM_KEY, value=to_push)
        return counts.to_dict()


class SumitPushLinkedOperator(SumitPushOperator):
    """Send SUMIT what the customers just linked hold and their CRM customer lacks: updates,
    never a create. Nothing in a dry run (which linked nothing)."""

    def __init__(self, *, link_task_id: str, **kwargs: Any) -> None:
        super().__init__(customer_ids=None, only_changed=False, **kwargs)
        self.link_task_id = link_task_id

    def run(self, context: Any) -> dict[str, Any]:
        if _as_bool(self.dry_run):
            self.log.info("Dry run: nothing was linked, so nothing is pushed.")
            return SyncCounts().to_dict()
        ids = context["ti"].xcom_pull(task_ids=self.link_task_id, key=PUSH_XCOM_KEY) or []
        if not ids:
            self.log.info("Nothing to push: every linked CRM customer holds the values the local row has.")
            return SyncCounts().to_dict()
        self.log.info("Sending SUMIT what %d linked customers lack (updates): ids %s", len(ids),
                      ", ".join(map(str, ids[:50])) + (" ..." if len(ids) > 50 else ""))
        self.customer_ids = ids
        return super().run(context)
