-- The runs of the last days, newest first (the console's Runs page and its chart).
SELECT id, dag_id, dag_run_id, operation, status, fetched, created, updated, unchanged, skipped, pushed,
       failed, conflicts, vanished, gave_up, changed, linked, held, message, started_at, finished_at
FROM crm_sync_runs
WHERE started_at > now() - make_interval(days => %(days)s)
ORDER BY started_at DESC
LIMIT %(limit)s
