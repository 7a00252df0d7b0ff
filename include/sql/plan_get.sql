-- A run's plan of one kind, if it has one.
SELECT status, reasons, plan, settings FROM crm_sync_plans
WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND kind = %(kind)s
