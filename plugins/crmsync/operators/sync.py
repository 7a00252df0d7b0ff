"""Thin Airflow operators: read the run's arguments, build the hook and store, call the flow.

Errors become Airflow's semantics here, and only here: a permanent error (bad credentials,
bad connection, a broken answer) fails the task at once with no retry; a transient one that
outlived the hook's own retries leaves the task to Airflow's retries. A failing task pushes
its reason to XCom (key ``error``) so the report task can name it.

The tasks that write customers (prepare, pull, push) hold crmsync's writer lock for their
whole work (:mod:`crmsync.db.locking`), so a manual run and the scheduled sync never interleave
writes to the same rows; the report task writes only its own run row and takes no lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from airflow.sdk import Asset, AssetAlias, BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from crmsync.airflow_side import deployment, lineage, metrics
from crmsync.airflow_side.params import unknown_conf_keys
from crmsync.core import assets, field_rules, guard, matching
from crmsync.core.errors import ConfigurationError, CrmSyncError, SumitPermanentError
from crmsync.core.field_rules import FieldRules
from crmsync.core.guard import GuardLimits
from crmsync.core.merge import ConflictPolicy
from crmsync.core.summary import SyncCounts
from crmsync.db.locking import application_name, customers_lock
from crmsync.db.store import CustomerStore, RunRef
from crmsync.flows import pull, push
from crmsync.hooks.sumit import SumitHook

# The pull's result when its plan waits for approval (wrote nothing), instead of counts.
HELD_PLAN = "plan_held"
DEFAULT_SUMIT_CONN_ID = "sumit_default"
DEFAULT_POSTGRES_CONN_ID = "crm_postgres"
# The outlet of every task that writes sumit_customers (crmsync.core.assets says why an alias).
CUSTOMERS_CHANGED = AssetAlias(assets.CHANGES_ALIAS_NAME)


def _as_bool(value: Any) -> bool:
    """Rendered templates may arrive as text when a DAG does not render native objects."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def open_customer_store(postgres_conn_id: str, context: Any, *, dry_run: bool, max_attempts: int = 5) -> CustomerStore:
    """The customers database, through the postgres provider, for this task's DAG run."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=postgres_conn_id).get_conn()
    run = RunRef(dag_id=context["dag"].dag_id, dag_run_id=context["run_id"])
    return CustomerStore(conn, run, dry_run=dry_run, max_attempts=max_attempts)


def check_conf_keys(context: Any) -> None:
    """Refuse a run whose conf names a key the DAG has no param for (a typo would be ignored)."""
    dag_run = context.get("dag_run")
    unknown = unknown_conf_keys(getattr(dag_run, "conf", None), context["dag"].params.keys())
    if unknown:
        raise ConfigurationError(
            f"This run's conf has keys that {context['dag'].dag_id} does not take: {', '.join(map(repr, unknown))}. "
            f"Its params are: {', '.join(sorted(context['dag'].params.keys()))}. Nothing was read or written."
        )


class _CrmSyncOperator(BaseOperator):
    """What every crmsync task shares: the two connections, error translation, and (for the
    tasks that write customers: ``changes_customers``) the ``sumit_customers`` asset event."""

    ui_color = "#d8ecf3"
    changes_customers = False  # True: the counts it returns may announce a change of the table
    operation = "pull"  # the word the asset event's extra and the metrics use for what it did
    # What it reads and writes, for OpenLineage: "sumit" (SUMIT's customers), "table" (sumit_customers)
    lineage_reads: tuple[str, ...] = ()
    lineage_writes: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        sumit_conn_id: str = DEFAULT_SUMIT_CONN_ID,
        postgres_conn_id: str = DEFAULT_POSTGRES_CONN_ID,
        dry_run: bool | str = False,
        max_record_attempts: int | str = 5,
        lock_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        if self.changes_customers:
            kwargs.setdefault("outlets", [CUSTOMERS_CHANGED])
        super().__init__(**kwargs)
        self.sumit_conn_id = sumit_conn_id
        self.postgres_conn_id = postgres_conn_id
        self.dry_run = dry_run
        self.max_record_attempts = max_record_attempts
        self.lock_timeout = lock_timeout  # seconds; None: CRMSYNC_LOCK_TIMEOUT_SECONDS when the task runs

    def execute(self, context: Any) -> Any:
        self._hooks: list[SumitHook] = []
        self._stores: list[CustomerStore] = []
        self._counts: dict[str, Any] | None = None
        started, failed = time.monotonic(), True
        try:
            result = self.run(context)
            if isinstance(result, dict) and not result.get(HELD_PLAN):
                self._counts = result
            if self.changes_customers and isinstance(result, dict) and not result.get(HELD_PLAN):
                self.announce_changes(context, result)
            failed = False
            return result
        except (SumitPermanentError, ConfigurationError) as exc:
            self._report_error(context, str(exc))
            raise AirflowFailException(str(exc)) from None
        except CrmSyncError as exc:
            self._report_error(context, str(exc))
            raise AirflowException(str(exc)) from None
        except psycopg.OperationalError as exc:
            message = f"The customers database (connection {self.postgres_conn_id!r}) is unreachable: {exc}".strip()
            self._report_error(context, message)
            raise AirflowException(message) from None
        finally:
            self._send_metrics(context, time.monotonic() - started, failed)

    def run(self, context: Any) -> Any:
        raise NotImplementedError

    def sumit_hook(self) -> SumitHook:
        """A SumitHook for this task (what its calls met goes into the task's metrics)."""
        hook = SumitHook(self.sumit_conn_id)
        self._hooks.append(hook)
        return hook

    # -- what the task tells the tools data teams watch -------------------------------------------
    def _send_metrics(self, context: Any, seconds: float, failed: bool) -> None:
        observed: dict[str, int] = {}
        for hook in self._hooks:
            for name, value in hook.observed().items():
                observed[name] = observed.get(name, 0) + value
        phases: dict[str, float] = {}
        for store in self._stores:
            for name, value in store.phase_seconds.items():
                phases[name] = phases.get(name, 0.0) + value
        if self.operation == "push" and self._hooks and not failed:
            phases.setdefault("push", seconds)
        profile = self._hooks[0].settings.api_profile if self._hooks and "settings" in self._hooks[0].__dict__ else ""
        tags = {"dag_id": context["dag"].dag_id, "task_id": self.task_id, "operation": self.operation,
                "api_profile": profile or self._api_profile()}
        metrics.task_finished(operation=self.operation, tags=tags, counts=self._counts, seconds=seconds,
                              phases=phases, sumit=observed, failed=failed)

    def _api_profile(self) -> str:
        try:
            return str(BaseHook.get_connection(self.sumit_conn_id).extra_dejson.get("api_profile") or "guide")
        except Exception:  # no sumit connection: a task that never calls SUMIT
            return "none"

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """What this task read and wrote, for Airflow's openlineage provider (crmsync.airflow_side.lineage)."""
        return self._lineage()

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return self._lineage()

    def _lineage(self) -> Any:
        if not (self.lineage_reads or self.lineage_writes):  # no data read or written (schema, report)
            return lineage.nothing()
        sumit: dict[str, Any] = {}
        if "sumit" in self.lineage_reads + self.lineage_writes:
            conn = BaseHook.get_connection(self.sumit_conn_id)
            sumit = {"host": conn.host, "extra": conn.extra_dejson}
        table: dict[str, Any] = {}
        if "table" in self.lineage_reads + self.lineage_writes:
            conn = BaseHook.get_connection(self.postgres_conn_id)
            table = {"host": conn.host, "port": conn.port, "database": conn.schema}
            try:
                from airflow.providers.postgres.hooks.postgres import PostgresHook

                with CustomerStore(PostgresHook(postgres_conn_id=self.postgres_conn_id).get_conn(),
                                   RunRef("lineage", "lineage"), dry_run=True) as store:
                    table.update(store.table_facts())
            except Exception as exc:  # lineage never fails a task: the datasets go without their facets
                self.log.warning("crmsync: the table's schema and row count are not in the lineage event: %s", exc)
        return lineage.operator_lineage(reads=self.lineage_reads, writes=self.lineage_writes, sumit=sumit, table=table,
                                        counts=self._counts if hasattr(self, "_counts") else None,
                                        operation=self.operation, dry_run=_as_bool(self.dry_run))

    def announce_changes(self, context: Any, counts: dict[str, Any]) -> None:
        """An event for the ``sumit_customers`` asset with these counts, if they changed anything."""
        extra = assets.change_extra(counts, dag_id=context["dag"].dag_id, run_id=context["run_id"],
                                    task_id=self.task_id, operation=self.operation)
        if extra is None or _as_bool(self.dry_run):
            self.log.info("%s: no %s asset event.", "Dry run, nothing written" if extra else "No customer changed",
                          assets.CUSTOMERS_ASSET_NAME)
            return
        conn = BaseHook.get_connection(self.postgres_conn_id)
        try:
            uri = assets.customers_asset_uri(conn.host, conn.port, conn.schema)
            asset = Asset(name=assets.CUSTOMERS_ASSET_NAME, uri=uri)
        except ValueError as exc:
            # The changes are committed: failing now would only make a retry that finds nothing to do.
            self.log.error("No %s asset event, so DAGs scheduled on it do not start: Airflow connection %r: %s.",
                           assets.CUSTOMERS_ASSET_NAME, self.postgres_conn_id, exc)
            return
        context["outlet_events"][CUSTOMERS_CHANGED].add(asset, extra=extra)
        self.log.info("Asset event for %s (%s): created %d, updated %d, vanished %d, changed %d.",
                      assets.CUSTOMERS_ASSET_NAME, uri, extra["created"], extra["updated"], extra["vanished"],
                      extra["changed"])

    def _report_error(self, context: Any, message: str) -> None:
        self.log.error("%s", message)
        context["ti"].xcom_push(key="error", value=message)

    def open_store(self, context: Any) -> CustomerStore:
        store = open_customer_store(self.postgres_conn_id, context, dry_run=_as_bool(self.dry_run),
                                    max_attempts=int(self.max_record_attempts))
        if hasattr(self, "_stores"):
            self._stores.append(store)
        return store

    def field_rules(self) -> FieldRules:
        """The field rules in force (Airflow Variable ``crmsync_field_rules``, else the rules file),
        validated: a bad entry fails the task before anything is written."""
        from airflow.sdk import Variable

        return field_rules.load(Variable.get(field_rules.VARIABLE, default=None))

    def nothing_here_yet(self, store: CustomerStore, what: str) -> bool:
        """A dry run on a database where crmsync never ran (no tables): says so and that there
        is ``what`` (nothing to undo, resolve, link), instead of failing on a table that is not
        there. A real run creates the tables first (prepare_customers_table)."""
        if store.dry_run and not store.table_exists():
            self.log.info("Dry run on a database where crmsync has not run yet (no sumit_customers table): %s. "
                          "Nothing was written.", what)
            return True
        return False

    def resolved_match_keys(self, param: Any = None) -> tuple[str, ...]:
        """The match keys in force (crmsync.core.matching.resolve_keys: the run's param when given,
        the Variable, the connection's extra, the default), said in the log."""
        from airflow.sdk import Variable

        param = None if param in (None, "", "None") else param
        extra = BaseHook.get_connection(self.sumit_conn_id).extra_dejson.get(matching.EXTRA)
        keys, source = matching.resolve_keys(param, Variable.get(matching.VARIABLE, default=None), extra)
        self.log.info("Customers both sides hold are matched by %s (%s).", matching.describe_keys(keys), source)
        return keys

    @contextmanager
    def locked_store(self, context: Any) -> Iterator[CustomerStore]:
        """A store whose session holds crmsync's writer lock until the block ends.

        Dry runs take it too: a dry-run pull checks the schema inside its own transaction,
        which locks the tables until it ends, and what it reports is only what a real run
        would do if no other run is writing meanwhile.
        """
        timeout = deployment.lock_timeout_seconds() if self.lock_timeout is None else float(self.lock_timeout)
        with self.open_store(context) as store:
            holder = application_name(context["dag"].dag_id, context["run_id"])
            with customers_lock(store, holder=holder, timeout=timeout, log=self.log):
                yield store


class PrepareCustomersTableOperator(_CrmSyncOperator):
    """Create or upgrade the sumit_customers table and crmsync's bookkeeping tables."""

    operation = "prepare"

    template_fields: Sequence[str] = ("dry_run",)

    def run(self, context: Any) -> dict[str, Any]:
        check_conf_keys(context)
        rules = self.field_rules()  # a bad rule stops the run here, before any write
        if not rules.is_default:
            self.log.info("Field rules in force: %s", rules.describe())
        with self.locked_store(context) as store:
            if store.dry_run:
                self.log.info("Dry run: the schema is checked inside the pull's own transaction, not here.")
                store.table_exists()  # still proves the database answers
                return {"schema": "unchanged (dry run)"}
            store.ensure_schema()
            self.log.info("Schema of sumit_customers, crm_sync_runs, crm_sync_errors and crm_sync_conflicts is current.")
            return {"schema": "current"}


class SumitPullOperator(_CrmSyncOperator):
    """Pull every SUMIT customer into sumit_customers (three-way merge, batched per page, one
    transaction), unless the plan is a mass change (crmsync.core.guard): then nothing is written and
    the plan waits in crm_sync_plans for the approval task."""

    lineage_reads, lineage_writes = ("sumit",), ("table",)

    changes_customers = True

    template_fields: Sequence[str] = ("dry_run", "conflict_policy", "full_resync", "skip", "max_record_attempts",
                                      "approved_in_advance", "max_change_ratio", "min_mass_change", "match_keys")

    def __init__(
        self,
        *,
        conflict_policy: str = ConflictPolicy.NEWER_WINS.value,
        full_resync: bool | str = False,
        skip: bool | str = False,
        approved_in_advance: bool | str = False,
        max_change_ratio: float | str = guard.DEFAULT_MAX_CHANGE_RATIO,
        min_mass_change: int | str = guard.DEFAULT_MIN_MASS_CHANGE,
        match_keys: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.match_keys = match_keys  # None: the Variable, the connection's extra, or tax id then e-mail
        self.conflict_policy = conflict_policy
        self.full_resync = full_resync
        self.skip = skip  # e.g. "{{ params.retry_failed_only }}": this run only retries failed pushes
        self.approved_in_advance = approved_in_advance
        self.max_change_ratio = max_change_ratio
        self.min_mass_change = min_mass_change

    def run(self, context: Any) -> dict[str, Any]:
        if _as_bool(self.skip):
            self.log.info("Pull skipped: this run only retries the customers whose push failed.")
            return SyncCounts().to_dict()
        policy = ConflictPolicy.parse(self.conflict_policy)
        limits = None
        if _as_bool(self.approved_in_advance):
            self.log.info("approve_mass_change is set: this pull writes its plan whatever its size.")
        else:
            limits = GuardLimits(max_change_ratio=float(self.max_change_ratio), min_mass_change=int(self.min_mass_change))
        rules = self.field_rules()
        match_keys = self.resolved_match_keys(self.match_keys)
        hook = self.sumit_hook()
        try:
            with self.locked_store(context) as store:
                result = pull.run_pull(hook, store, policy=policy, full_resync=_as_bool(self.full_resync), rules=rules,
                                       limits=limits, match_keys=match_keys, log=self.log)
                self.log.info("Pull finished in %d database round trips.", store.round_trips)
        finally:
            hook.close()
        if result.held:
            return {HELD_PLAN: True, "reasons": result.reasons}
        return result.counts.to_dict()



class SumitPushOperator(_CrmSyncOperator):
    """Push local customers to SUMIT: the given ids, or (only_changed) those edited since their last sync."""

    lineage_reads, lineage_writes = ("table",), ("sumit",)

    changes_customers = True  # a create links the SUMIT id it answered
    operation = "push"

    template_fields: Sequence[str] = ("dry_run", "customer_ids", "only_changed", "queue_only", "max_record_attempts")

    def __init__(
        self,
        *,
        customer_ids: Any = None,
        only_changed: bool | str = False,
        retry_queue: bool = False,
        queue_only: bool | str = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.customer_ids = customer_ids
        self.only_changed = only_changed
        self.retry_queue = retry_queue  # customers whose last push failed go first
        self.queue_only = queue_only  # ... and nothing else

    def run(self, context: Any) -> dict[str, Any]:
        ids = list(self.customer_ids) if self.customer_ids else None  # empty means all
        rules = self.field_rules()
        hook = self.sumit_hook()
        try:
            with self.locked_store(context) as store:
                counts = push.run_push(
                    hook, store, customer_ids=ids, only_changed=_as_bool(self.only_changed),
                    concurrency=hook.settings.push_concurrency, log=self.log,
                    retry_queue=self.retry_queue, queue_only=_as_bool(self.queue_only), rules=rules,
                )
        finally:
            hook.close()
        return counts.to_dict()
