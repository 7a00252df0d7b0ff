"""The mass-change guard's approval steps: Airflow's human-in-the-loop ApprovalOperator, asked
only when the plan in PostgreSQL needs it (crmsync.core.guard), skipped otherwise.

The plan itself never travels through XCom: the pull task keeps it in crm_sync_plans (and the
listing in crm_sync_listing), so any worker can ask for the approval and apply it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.exceptions import HITLRejectException, HITLTimeoutError, HITLTriggerEventError
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from crmsync.airflow_side import deployment
from crmsync.core import guard
from crmsync.core.guard import GuardLimits, PullPlan
from crmsync.db import plans
from crmsync.db.store import CustomerStore
from crmsync.operators.sync import DEFAULT_POSTGRES_CONN_ID, _as_bool, _CrmSyncOperator, open_customer_store


class _MassChangeApprovalOperator(ApprovalOperator):
    """Ask a person to approve what the run is about to do, or skip when nothing needs it."""

    kind = ""
    ui_color = "#fff2cc"
    # dry_run must be rendered: left as its template text it would read as false, and a dry run
    # on a fresh database would look for a plan in a table that does not exist.
    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "dry_run", "approved_in_advance")

    def __init__(self, *, postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID, dry_run: bool | str = False,
                 approved_in_advance: bool | str = False, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Approve a mass change to sumit_customers")
        kwargs.setdefault("response_timeout", deployment.APPROVAL_TIMEOUT)
        super().__init__(fail_on_reject=True, **kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.dry_run = dry_run
        self.approved_in_advance = approved_in_advance

    def store(self, context: Any) -> CustomerStore:
        return open_customer_store(self.postgres_conn_id, context, dry_run=False)

    def execute(self, context: Any) -> Any:
        if _as_bool(self.dry_run):
            raise AirflowSkipException("Dry run: nothing is written, so nothing needs approval.")
        body = self.plan_needing_approval(context)
        if body is None:
            raise AirflowSkipException("No approval needed.")
        self.body = body
        self.subject = f"Approve a mass change to sumit_customers: {context['dag'].dag_id}, run {context['run_id']}"
        self.log.warning("Waiting for a person to approve or reject in the Airflow UI (Required Actions):\n%s", body)
        return super().execute(context)

    def plan_needing_approval(self, context: Any) -> str | None:
        raise NotImplementedError

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        try:
            result = super().execute_complete(context, event)
        except (HITLRejectException, HITLTimeoutError, HITLTriggerEventError) as exc:
            rejected = isinstance(exc, HITLRejectException)
            how = (f"rejected by {event.get('responded_by_user') or 'a user'}" if rejected
                   else "not answered in time" if isinstance(exc, HITLTimeoutError) else f"not answered ({exc})")
            message = f"The mass change was {how}: nothing was written."
            with self.store(context) as store:
                plans.close(store, self.kind, plans.REJECTED)
                store.commit()
            self.log.error("%s", message)
            context["ti"].xcom_push(key="error", value=message)
            raise AirflowFailException(message) from None
        self.log.info("Approved by %s.", event.get("responded_by_user") or "a user")
        if self.kind == "push":  # the push itself follows; a pull plan is closed by the task applying it
            with self.store(context) as store:
                plans.close(store, self.kind, plans.APPLIED)
                store.commit()
        return result


class ApprovePullPlanOperator(_MassChangeApprovalOperator):
    """Waits for a person when the pull held its plan (crm_sync_plans, kind pull); skips otherwise."""

    kind = "pull"

    def plan_needing_approval(self, context: Any) -> str | None:
        with self.store(context) as store:
            held = plans.held(store, "pull")
        if held is None or held.status != plans.AWAITING:
            return None
        return guard.describe_pull_plan(PullPlan.from_dict(held.plan), held.reasons)


class ApproveMassPushOperator(_MassChangeApprovalOperator):
    """Waits for a person when the push would send more than ``max_push_without_approval``
    customers; skips otherwise, and when ``approved_in_advance``."""

    kind = "push"
    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "dry_run", "approved_in_advance",
                                      "customer_ids", "max_push_without_approval", "skip_when")

    def __init__(self, *, customer_ids: Any = None, only_changed: bool = False, retry_queue: bool = False,
                 max_push_without_approval: int | str = guard.DEFAULT_MAX_PUSH_WITHOUT_APPROVAL,
                 skip_when: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.customer_ids = customer_ids
        self.only_changed = only_changed
        self.retry_queue = retry_queue
        self.max_push_without_approval = max_push_without_approval
        self.skip_when = skip_when

    def plan_needing_approval(self, context: Any) -> str | None:
        if _as_bool(self.approved_in_advance) or _as_bool(self.skip_when):
            return None
        ids = list(self.customer_ids) if self.customer_ids else None
        limits = GuardLimits(max_push_without_approval=int(self.max_push_without_approval))
        with self.store(context) as store:
            count, examples = plans.push_size(store, ids=ids, only_changed=self.only_changed, retry_queue=self.retry_queue)
            reasons = guard.push_reasons(count, limits)
            if not reasons:
                self.log.info("This push sends %d customers: no approval needed (limit %d).", count,
                              limits.max_push_without_approval)
                return None
            plans.hold(store, "push", plan={"customers": count, "examples": examples}, reasons=reasons, settings={})
        return guard.describe_push(count, examples, reasons)


class ApplyApprovedPlanOperator(_CrmSyncOperator):
    """Apply the pull plan a person approved, exactly as computed (see flows.pull.apply_held_pull)."""

    lineage_reads, lineage_writes = ("sumit",), ("table",)  # the listing SUMIT sent, kept with the plan

    changes_customers = True
    operation = "pull"

    template_fields: Sequence[str] = ("dry_run",)

    def run(self, context: Any) -> dict[str, Any]:
        from crmsync.flows import pull

        rules = self.field_rules()
        with self.locked_store(context) as store:
            result = pull.apply_held_pull(store, rules=rules, log=self.log)
        return result.counts.to_dict()
