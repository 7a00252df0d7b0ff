"""The run params the DAGs offer, as Airflow Params: a bad ``conf`` is refused at trigger time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import Param

from crmsync.core.guard import DEFAULT_MAX_CHANGE_RATIO, DEFAULT_MAX_PUSH_WITHOUT_APPROVAL, DEFAULT_MIN_MASS_CHANGE
from crmsync.core.matching import KEYS as MATCH_KEYS
from crmsync.core.merge import ConflictPolicy
from crmsync.core.summary import DEFAULT_MAX_REJECT_RATIO, DEFAULT_MIN_REJECTS_TO_FAIL

MAX_IDS = 100_000
MAX_ID = 2**63 - 1  # sumit_customers.id is a bigint: a larger id would fail in the database, not here

_ID_ITEMS = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


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


def full_resync_param() -> Param:
    return Param(False, type="boolean", title="Full resync",
                 description="Ignore the stored CRM fingerprints for this run: re-compare every customer on content "
                             "(a row with no local edit takes the CRM copy). Never duplicates rows.")


def match_keys_param() -> Param:
    return Param(None, type=["null", "array"], items={"type": "string", "enum": list(MATCH_KEYS)}, uniqueItems=True,
                 maxItems=len(MATCH_KEYS), title="Match keys",
                 description="How customers both sides already hold are recognised before anything is created: "
                             "keys in order, e.g. [\"tax_id\", \"email\"] (phone too, if you add it; a name "
                             "alone never links; [] turns matching off). Empty (null): the Variable "
                             "crmsync_match_keys, else the sumit connection's extra match_keys, else tax_id then "
                             "email.")


def link_pairs_param() -> Param:
    return Param([], type="array", maxItems=MAX_IDS, title="Links",
                 items={"type": "array", "minItems": 2, "maxItems": 2,
                        "prefixItems": [{"type": "integer", "minimum": 1, "maximum": MAX_ID},
                                        {"type": "string", "minLength": 1, "maxLength": 200}]},
                 description="Pairs [local id, CRM id] a person decided are the same customer, e.g. "
                             "[[12, \"40123\"]]. Refused, with nothing written, when either side is linked to "
                             "someone else or unknown.")


def separate_param() -> Param:
    return Param([], type="array", items=_ID_ITEMS, maxItems=MAX_IDS, title="Different customers",
                 description="Ids of held records (crm_sync_matches.id, the console's Matches page) that are "
                             "different customers: they then cross as new records and are never proposed again "
                             "with those candidates.")


def unlink_param() -> Param:
    return Param([], type="array", items=_ID_ITEMS, maxItems=MAX_IDS, title="Unlink",
                 description="Local ids to unlink from their CRM customer: the CRM id is removed and the pair is "
                             "never matched again automatically.")


def retry_failed_only_param() -> Param:
    return Param(False, type="boolean", title="Retry failed only",
                 description="Skip the pull and push only the customers whose last push failed (the retry queue "
                             "in crm_sync_errors).")


def max_record_attempts_param() -> Param:
    return Param(5, type="integer", minimum=1, maximum=1000, title="Attempts per record",
                 description="Failed pushes (and rejected CRM records) are retried on later runs until they succeed "
                             "or fail this many times; then they are marked gave_up and named in the run summary.")


def max_reject_ratio_param() -> Param:
    return Param(DEFAULT_MAX_REJECT_RATIO, type="number", minimum=0, maximum=1, title="Largest share of rejects",
                 description="When more than this share of the run's records (and at least 'Fewest rejects to fail' "
                             "of them) is skipped or refused, the run fails (red) naming the counts and first "
                             "reasons; otherwise a run with rejects is a green 'warning'.")


def min_rejects_to_fail_param() -> Param:
    return Param(DEFAULT_MIN_REJECTS_TO_FAIL, type="integer", minimum=1, maximum=10_000_000,
                 title="Fewest rejects to fail",
                 description="A run is failed for its rejects only when at least this many records were skipped or "
                             "refused (and more than the largest share): one bad record of four is a warning.")


def approve_mass_change_param() -> Param:
    return Param(False, type="boolean", title="Approve a mass change in advance",
                 description="For runs started by scripts: apply the plan even when it is a mass change (more than "
                             "max_change_ratio of the customers changed, blanked or vanished; a push of more than "
                             "max_push_without_approval customers) instead of waiting for a person's approval.")


def max_change_ratio_param() -> Param:
    return Param(DEFAULT_MAX_CHANGE_RATIO, type="number", minimum=0, maximum=1, title="Largest share changed without approval",
                 description="A pull that would change, blank a field on, or flag as vanished more than this share of "
                             "the existing customers (and at least 'Smallest mass change' of them) writes nothing and "
                             "waits for approval in Required Actions. New customers never count.")


def min_mass_change_param() -> Param:
    return Param(DEFAULT_MIN_MASS_CHANGE, type="integer", minimum=1, maximum=100_000_000, title="Smallest mass change",
                 description="Fewer customers than this changed, blanked or vanished is never a mass change, whatever "
                             "the share: small tables are not stopped by one person's edits.")


def max_push_without_approval_param() -> Param:
    return Param(DEFAULT_MAX_PUSH_WITHOUT_APPROVAL, type="integer", minimum=0, maximum=100_000_000,
                 title="Largest push without approval",
                 description="A push of more customers than this in one run waits for a person's approval first.")


def unknown_conf_keys(conf: Mapping[str, Any] | None, param_names: Iterable[str]) -> list[str]:
    """Keys of a trigger's ``conf`` that the DAG has no param for.

    Airflow keeps unknown keys (conf is free-form), so a typo such as ``"dryrun": true`` would
    otherwise start a real run; crmsync's first task refuses the run instead, naming them.
    """
    return sorted(set(conf or {}) - set(param_names))


def revert_dag_run_id_param() -> Param:
    return Param(type="string", minLength=1, maxLength=250, pattern=r"\S", title="Run to undo",
                 description="The dag_run_id of the run whose local changes to undo, as crm_sync_runs.dag_run_id and "
                             "the Airflow UI show it, e.g. manual__2026-11-26T03:00:00+00:00. Required.")


def push_reverted_param() -> Param:
    return Param(False, type="boolean", title="Push the restored values",
                 description="Also send the restored customers to SUMIT right away. Off: the next "
                             "crm_bidirectional_sync sends them (their local values differ from what was last synced).")


def conflict_ids_param() -> Param:
    return Param(type="array", items=_ID_ITEMS, minItems=1, maxItems=MAX_IDS, title="Conflicts",
                 description="crm_sync_conflicts.id values of the conflicts to resolve, e.g. [12]. Required.")


def keep_param() -> Param:
    return Param(type="string", enum=["crm", "local"], title="Keep",
                 values_display={"crm": "The CRM's version", "local": "The local version (pushed to SUMIT)"},
                 description="Which side of the conflicts to keep: crm (take the CRM's values) or local (keep the "
                             "local values and push them). Keeping the side that won writes nothing. Required.")


def max_events_param() -> Param:
    return Param(10_000, type="integer", minimum=1, maximum=1_000_000, title="Most triggers per run",
                 description="The run applies at most this many pending triggers, oldest first, in batches of 500 "
                             "(one transaction each); the rest wait for the next run.")


def triggers_action_param() -> Param:
    return Param("show", type="string", enum=["show", "subscribe", "unsubscribe"], title="Action",
                 values_display={"show": "Show what is subscribed", "subscribe": "Subscribe the receiver",
                                 "unsubscribe": "Unsubscribe the receiver"},
                 description="subscribe: SUMIT posts the chosen triggers of the customers folder to this Airflow's "
                             "receiver (connection crmsync_webhook: token and public_url); unsubscribe: it stops; "
                             "show: what crmsync subscribed, and the inbox.")


def trigger_types_param() -> Param:
    return Param(["CreateOrUpdate", "Archive", "Delete"], type="array",
                 items={"type": "string", "enum": ["CreateOrUpdate", "Create", "Update", "Archive", "Delete"]},
                 minItems=1, maxItems=5, title="Trigger types",
                 description="Which changes of the customers folder SUMIT posts (subscribe only).")


def trigger_view_param() -> Param:
    return Param(None, type=["null", "string"], maxLength=200, title="View",
                 description="The SUMIT view that scopes the records triggers are posted for (subscribe only; SUMIT "
                             "may require one). Empty: none is sent.")
