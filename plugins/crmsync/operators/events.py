"""Operators of SUMIT's triggers: apply the inbox (crm_apply_crm_events), manage the
subscription (crm_sumit_triggers). Thin, as the others: the work is in crmsync.flows.events."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseHook

from crmsync.airflow_side import webhook_settings
from crmsync.airflow_side.webhook_settings import WebhookSettings
from crmsync.core import guard
from crmsync.core.errors import ConfigurationError, SumitError
from crmsync.core.merge import ConflictPolicy
from crmsync.core.triggers import TRIGGER_TYPES, hide_token
from crmsync.db import inbox
from crmsync.flows import events
from crmsync.operators.sync import _CrmSyncOperator, check_conf_keys
from crmsync.sumit.redact import redact


class ApplyCrmEventsOperator(_CrmSyncOperator):
    """Apply the pending triggers in crm_inbox: read each named customer fresh from SUMIT and
    merge it as the pull does, under the writer lock, batch by batch (crmsync.flows.events)."""

    lineage_reads, lineage_writes = ("sumit",), ("table",)

    changes_customers = True
    operation = "events"
    template_fields: Sequence[str] = ("dry_run", "conflict_policy", "max_events", "max_record_attempts",
                                      "max_change_ratio", "min_mass_change")

    def __init__(self, *, conflict_policy: str = ConflictPolicy.NEWER_WINS.value, max_events: int | str = 10_000,
                 max_change_ratio: float | str = guard.DEFAULT_MAX_CHANGE_RATIO,
                 min_mass_change: int | str = guard.DEFAULT_MIN_MASS_CHANGE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conflict_policy = conflict_policy
        self.max_events = max_events
        self.max_change_ratio = max_change_ratio
        self.min_mass_change = min_mass_change

    def run(self, context: Any) -> dict[str, Any]:
        check_conf_keys(context)
        policy = ConflictPolicy.parse(self.conflict_policy)
        rules = self.field_rules()
        hook = self.sumit_hook()
        try:
            with self.locked_store(context) as store:
                if not store.fetch("SELECT to_regclass('crm_inbox') IS NOT NULL", raw=True)[0][0]:
                    store.ensure_schema()  # a first run before any other crmsync run: nothing waits yet
                counts = events.run_apply_events(
                    hook, store, customers_folder=hook.settings.customers_folder, policy=policy, rules=rules,
                    max_events=int(self.max_events), concurrency=hook.settings.push_concurrency, log=self.log,
                    limits=guard.GuardLimits(max_change_ratio=float(self.max_change_ratio),
                                             min_mass_change=int(self.min_mass_change)),
                    match_keys=self.resolved_match_keys(),
                )
        finally:
            hook.close()
        return counts.to_dict()


class SumitTriggersOperator(_CrmSyncOperator):
    """Subscribe the receiver's URL to SUMIT's triggers of the customers folder, unsubscribe it,
    or show what is subscribed (SUMIT has no call that lists them: crm_sumit_subscriptions
    records what this task subscribed). The URL's token never reaches a log, XCom or table."""

    operation = "triggers"

    template_fields: Sequence[str] = ("action", "trigger_types", "view")

    def __init__(self, *, action: str = "show", trigger_types: Any = TRIGGER_TYPES[0], view: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.action = action
        self.trigger_types = trigger_types
        self.view = view

    def run(self, context: Any) -> dict[str, Any]:
        check_conf_keys(context)
        action = str(self.action)
        if action not in ("subscribe", "unsubscribe", "show"):
            raise ConfigurationError(f"action must be subscribe, unsubscribe or show, not {action!r}.")
        with self.open_store(context) as store:
            store.ensure_schema()
            if action != "show":
                settings = self._webhook()
                url = settings.url(webhook_settings.conn_id())
                self._change(context, store, action, url, settings.token)
            subscriptions = [
                {"url": r[0], "folder": r[2], "view": r[3], "trigger_type": r[4], "subscribed_at": r[5].isoformat(),
                 "dag_run_id": r[6]}
                for r in store.fetch("subscriptions_list")
            ]
            waiting = inbox.counts(store.conn)
        for s in subscriptions:
            self.log.info("Subscribed: %s to %s of folder %s%s (since %s)", s["url"], s["trigger_type"], s["folder"],
                          f", view {s['view']}" if s["view"] else "", s["subscribed_at"])
        if not subscriptions:
            self.log.info("Nothing is subscribed (as far as crm_sumit_subscriptions knows).")
        self.log.info("Inbox: %s", waiting)
        return {"action": action, "subscriptions": subscriptions, "inbox": waiting}

    def _webhook(self) -> WebhookSettings:
        name = webhook_settings.conn_id()
        conn = BaseHook.get_connection(name)
        return WebhookSettings.from_connection(name, password=conn.password, host=conn.host, extra=conn.extra_dejson)

    def _change(self, context: Any, store: Any, action: str, url: str, token: str) -> None:
        types = _trigger_types(self.trigger_types)
        hook = self.sumit_hook()
        try:
            folder = hook.settings.customers_folder or ""
            if action == "subscribe":
                for trigger_type in types:
                    hook.subscribe(url, trigger_type, self.view or None)
                self.log.info("SUMIT now posts %s triggers of folder %s to %s.", ", ".join(types), folder,
                              hide_token(url))
            else:
                hook.unsubscribe(url)
                self.log.info("SUMIT no longer posts triggers to %s.", hide_token(url))
        except SumitError as exc:  # SUMIT's message may quote the URL it refused
            raise type(exc)(redact(str(exc), [token]), endpoint=exc.endpoint) from None
        finally:
            hook.close()
        store.fetch("subscription_record", {
            "url_sha256": hashlib.sha256(url.encode()).hexdigest(), "url_shown": hide_token(url), "folder": folder,
            "view": self.view or None, "trigger_types": types, "subscribed": action == "subscribe",
            "dag_run_id": context["run_id"],
        })
        store.commit()


def _trigger_types(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else list(value or [])
    known = {t.lower(): t for t in TRIGGER_TYPES}
    types = []
    for item in items:
        name = known.get(str(item).strip().lower())
        if name is None:
            raise ConfigurationError(f"trigger type {item!r} is not one of SUMIT's: {', '.join(TRIGGER_TYPES)}.")
        if name not in types:
            types.append(name)
    if not types:
        raise ConfigurationError(f"Name at least one trigger type: {', '.join(TRIGGER_TYPES)}.")
    return types

