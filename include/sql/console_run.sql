-- One run's row (the DAG-run tab and a console notification).
SELECT id, dag_id, dag_run_id, operation, status, fetched, created, updated, unchanged, skipped, pushed,
       failed, conflicts, vanished, gave_up, changed, linked, held, message, started_at, finished_at
FROM crm_sync_runs
WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s
