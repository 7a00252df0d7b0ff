-- The run's row, written by the report task (again on a retry of it).
INSERT INTO crm_sync_runs (
    dag_id, dag_run_id, operation, fetched, created, updated, unchanged, skipped, pushed, failed,
    conflicts, vanished, gave_up, changed, linked, held, status, message, started_at, finished_at)
VALUES (%(dag_id)s, %(dag_run_id)s, %(operation)s, %(fetched)s, %(created)s, %(updated)s,
        %(unchanged)s, %(skipped)s, %(pushed)s, %(failed)s, %(conflicts)s, %(vanished)s, %(gave_up)s, %(changed)s,
        %(linked)s, %(held)s, %(status)s,
        %(message)s, %(started_at)s, %(finished_at)s)
ON CONFLICT (dag_id, dag_run_id) DO UPDATE SET
    operation = EXCLUDED.operation, fetched = EXCLUDED.fetched, created = EXCLUDED.created,
    updated = EXCLUDED.updated, unchanged = EXCLUDED.unchanged, skipped = EXCLUDED.skipped,
    pushed = EXCLUDED.pushed, failed = EXCLUDED.failed, conflicts = EXCLUDED.conflicts,
    vanished = EXCLUDED.vanished, gave_up = EXCLUDED.gave_up, changed = EXCLUDED.changed,
    linked = EXCLUDED.linked, held = EXCLUDED.held,
    status = EXCLUDED.status, message = EXCLUDED.message, finished_at = EXCLUDED.finished_at
