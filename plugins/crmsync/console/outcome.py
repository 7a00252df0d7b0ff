"""What the console says (pure): sync states, the DAGs its buttons start, and a run's outcome
in the guide's words ("Pushed 8 customers, 2 failed")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PULL_DAG = "crm_pull_customers"
PUSH_DAG = "crm_push_customers"
SYNC_DAG = "crm_bidirectional_sync"
REVERT_DAG = "crm_revert_run"
RESOLVE_DAG = "crm_resolve_conflicts"
EVENTS_DAG = "crm_apply_crm_events"  # started by the receiver of SUMIT's triggers, not by the console
LINK_DAG = "crm_link_customers"
# The DAGs the console reads from and may start; nothing else can be triggered through it.
DAG_IDS = (PULL_DAG, PUSH_DAG, SYNC_DAG, REVERT_DAG, RESOLVE_DAG, EVENTS_DAG, LINK_DAG)
ACTION_DAGS = (PULL_DAG, PUSH_DAG, SYNC_DAG, RESOLVE_DAG, LINK_DAG)


@dataclass(frozen=True)
class SyncState:
    key: str
    label: str
    meaning: str


# In the order a customer's state is decided (the first that holds), as the view
# crm_sync_customer_states decides it.
SYNC_STATES = (
    SyncState("push_failed", "Push failed", "its last push failed; the next run retries it"),
    SyncState("given_up", "Given up", "its push failed too many times; it waits for a change or a retry"),
    SyncState("conflict", "In conflict", "both sides changed it; a policy chose a winner you can overrule"),
    SyncState("missing", "Missing in the CRM", "linked, but SUMIT no longer lists it"),
    SyncState("awaiting_match", "Waiting for a match decision",
              "SUMIT may hold it already: a key matched several customers, so a person decides (Matches)"),
    SyncState("never_synced", "Never synced", "not in SUMIT yet"),
    SyncState("changed", "Changed locally", "edited since its last sync: waiting for a push"),
    SyncState("synced", "Synced", "the same on both sides since its last sync"),
)
STATE_KEYS = tuple(s.key for s in SYNC_STATES)
STATE_LABELS = {s.key: s.label for s in SYNC_STATES}

FINISHED = ("success", "failed")


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def outcome_text(dag_id: str, airflow_state: str | None, run_row: Mapping[str, Any] | None) -> str:
    """One sentence for a console notification.

    ``airflow_state`` is the DAG run's state in Airflow; ``run_row`` its crm_sync_runs row
    (None until the report task wrote it).
    """
    if airflow_state in (None, "queued"):
        return "Waiting for a worker ..."
    if airflow_state == "running" and not run_row:
        return "Running ..."
    if not run_row:
        return "The run failed before it could count anything: see its logs in Airflow."
    text = _counts_text(dag_id, run_row)
    if run_row.get("status") == "failed" or airflow_state == "failed":
        message = (run_row.get("message") or "").strip()
        return f"Failed. {text}" + (f" ({message})" if message else "")
    return text


def _counts_text(dag_id: str, row: Mapping[str, Any]) -> str:
    pushed, failed = int(row.get("pushed") or 0), int(row.get("failed") or 0)
    push = f"Pushed {_plural(pushed, 'customer')}, {failed:,} failed"
    created, updated = int(row.get("created") or 0), int(row.get("updated") or 0)
    pull = f"Pulled {_plural(int(row.get('fetched') or 0), 'customer')}: {created:,} new, {updated:,} updated"
    if dag_id == RESOLVE_DAG:  # its "conflicts" are the conflicts it resolved, "updated" the rows it rewrote
        resolved = f"Resolved {_plural(int(row.get('conflicts') or 0), 'conflict')}: {updated:,} rewritten, "
        skipped = int(row.get("skipped") or 0)
        return resolved + push[0].lower() + push[1:] + (f" ({skipped:,} skipped)" if skipped else "")
    if dag_id == LINK_DAG:  # a person's match decisions: the numbers are in its summary line
        linked, changed = int(row.get("linked") or 0), int(row.get("changed") or 0)
        return f"Linked {_plural(linked, 'customer')}, changed {changed:,}; {push[0].lower()}{push[1:]}"
    extras = []
    for key, word in (("linked", "linked"), ("held", "waiting for a match decision"),
                      ("vanished", "missing in the CRM"), ("conflicts", "in conflict"), ("skipped", "skipped"),
                      ("gave_up", "given up")):
        if row.get(key):
            extras.append(f"{int(row[key]):,} {word}")
    tail = f" ({', '.join(extras)})" if extras else ""
    if dag_id == PUSH_DAG:
        return push + tail
    if dag_id == PULL_DAG:
        return pull + tail
    if dag_id == SYNC_DAG:
        return f"{pull}; {push[0].lower()}{push[1:]}{tail}"
    if dag_id == EVENTS_DAG:
        read = int(row.get("fetched") or 0)
        return f"Applied SUMIT's triggers: read {_plural(read, 'customer')}, {created:,} new, {updated:,} updated{tail}"
    return f"Changed {_plural(int(row.get('changed') or 0), 'customer')}{tail}"


def airflow_run_url(base: str, dag_id: str, run_id: str) -> str:
    """The run's page in Airflow's own UI."""
    from urllib.parse import quote

    return f"{base.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
