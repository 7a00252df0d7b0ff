"""Run counts, the run's status and the one-line summary the log ends with (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

SUCCESS, WARNING, FAILED = "success", "warning", "failed"


@dataclass
class SyncCounts:
    """Counts of one run (or one phase of it). Plain integers: they travel through XCom."""

    fetched: int = 0  # records the CRM listed
    created: int = 0  # local rows inserted by the pull
    updated: int = 0  # local rows changed by the pull
    unchanged: int = 0  # pulled records that needed no local change
    skipped: int = 0  # records not synced: invalid, duplicate, unknown id
    pushed: int = 0  # customers the CRM accepted
    failed: int = 0  # customers the CRM refused or that could not be sent
    conflicts: int = 0  # customers both sides changed since the last sync
    vanished: int = 0  # linked customers the CRM stopped listing, newly flagged
    gave_up: int = 0  # failed records that reached the attempt cap this run
    changed: int = 0  # customers the run changed: its rows in the change journal (crm_sync_changes)
    linked: int = 0  # local customers linked to the CRM customer matching found (or a person chose)
    held: int = 0  # records waiting for a person's match decision (crm_sync_matches)
    separated: int = 0  # held records a person said are different customers (crm_link_customers)
    unlinked: int = 0  # local customers a person unlinked from their CRM customer
    considered: int = 0  # records the run dealt with: fetched, plus those the push looked at
    reasons: list[str] = field(default_factory=list)  # first few problems, for the message

    MAX_REASONS = 5

    def add_reason(self, reason: str) -> None:
        if len(self.reasons) < self.MAX_REASONS and reason not in self.reasons:
            self.reasons.append(reason)

    def merge(self, other: "SyncCounts") -> "SyncCounts":
        merged = SyncCounts()
        for f in fields(SyncCounts):
            if f.name != "reasons":
                setattr(merged, f.name, getattr(self, f.name) + getattr(other, f.name))
        for reason in self.reasons + other.reasons:
            merged.add_reason(reason)
        return merged

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "SyncCounts":
        data = data or {}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# A run is red for its rejects only when both hold: more than this share of its records was
# skipped or refused, and at least this many were. The guide's own partial runs ("skips invalid
# records", "Pushed 8 customers, 2 failed") stay green warnings; a broken feed or a bad deploy
# that refuses most records of a real batch is red.
DEFAULT_MAX_REJECT_RATIO = 0.5
DEFAULT_MIN_REJECTS_TO_FAIL = 10


def rejected(counts: SyncCounts) -> int:
    """Records the run skipped or SUMIT refused."""
    return counts.skipped + counts.failed


def reject_ratio(counts: SyncCounts) -> float:
    """The share of the records a run dealt with that were skipped or refused."""
    return rejected(counts) / counts.considered if counts.considered else 0.0


def too_many_rejects(counts: SyncCounts, *, max_reject_ratio: float, min_rejects: int = 1) -> bool:
    """More than ``max_reject_ratio`` of the records, and at least ``min_rejects`` of them, were rejected."""
    return rejected(counts) >= max(1, min_rejects) and reject_ratio(counts) > max_reject_ratio


def is_partial(counts: SyncCounts) -> bool:
    """Some records were skipped, refused or given up on."""
    return bool(counts.failed or counts.skipped or counts.gave_up)


def run_status(counts: SyncCounts, *, phase_failed: bool, max_reject_ratio: float = 1.0, min_rejects: int = 1,
               fail_on_partial: bool = False) -> str:
    """``failed`` when a phase failed as a whole, or there were too many rejects (see
    ``too_many_rejects``), or the run was partial and ``fail_on_partial`` is set; ``warning``
    when it was partial; ``success`` otherwise. The run row, the log, the notification and
    Airflow's state all take this one verdict."""
    if phase_failed or too_many_rejects(counts, max_reject_ratio=max_reject_ratio, min_rejects=min_rejects):
        return FAILED
    if is_partial(counts):
        return FAILED if fail_on_partial else WARNING
    return SUCCESS


_TITLES = {"pull": "Pull", "push": "Push", "bidirectional": "Bidirectional sync", "revert": "Revert",
           "resolve": "Resolve", "events": "Apply CRM events", "link": "Link"}


def summary_line(operation: str, counts: SyncCounts, *, status: str, dry_run: bool = False) -> str:
    """The closing line, in the synchronization guide's wording.

    e.g. ``Bidirectional sync completed. Pulled: 120, Pushed: 8 (Failed: 2), Changed: 9``.
    """
    title = _TITLES[operation]
    verb = "failed" if status == FAILED else "completed"
    parts = []
    if operation in ("pull", "bidirectional"):
        parts.append(f"Pulled: {counts.fetched}")
    if operation == "events":  # customers SUMIT's triggers named, read fresh; those gone from SUMIT
        parts += [f"Read: {counts.fetched}", f"Missing in the CRM: {counts.vanished}"]
    if operation in ("push", "bidirectional"):
        parts.append(f"Pushed: {counts.pushed} (Failed: {counts.failed})")
    if operation == "revert":
        parts.append(f"Restored: {counts.updated}")
    if operation == "resolve":  # conflicts resolved, customers rewritten, and their push
        parts += [f"Resolved: {counts.conflicts}", f"Rewritten: {counts.updated}",
                  f"Pushed: {counts.pushed} (Failed: {counts.failed})"]
    if operation == "link":  # a person's match decisions
        parts += [f"Linked: {counts.linked}", f"Different customers: {counts.separated}",
                  f"Unlinked: {counts.unlinked}"]
    elif counts.linked:
        parts.append(f"Linked: {counts.linked}")
    if counts.held:
        parts.append(f"Held for a person: {counts.held}")
    parts.append(f"Changed: {counts.changed}")  # customers the run changed: its rows in crm_sync_changes
    line = f"{title} {verb}. " + ", ".join(parts)
    return f"[dry run, nothing written] {line}" if dry_run else line


def detail_line(counts: SyncCounts) -> str:
    """Every count, for the run row's message and the log."""
    return (
        f"fetched={counts.fetched} created={counts.created} updated={counts.updated} "
        f"unchanged={counts.unchanged} skipped={counts.skipped} pushed={counts.pushed} "
        f"failed={counts.failed} conflicts={counts.conflicts} vanished={counts.vanished} "
        f"gave_up={counts.gave_up} changed={counts.changed} linked={counts.linked} held={counts.held}"
    )
