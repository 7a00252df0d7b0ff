-- Mass changes waiting for a person's approval (the data-safety guard), newest first.
SELECT dag_id, dag_run_id, kind, status, reasons, plan, settings, created_at
FROM crm_sync_plans
WHERE status = 'awaiting_approval'
ORDER BY created_at DESC
