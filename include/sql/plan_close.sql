-- A plan applied or rejected.
UPDATE crm_sync_plans SET status = %(status)s, decided_at = now()
WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND kind = %(kind)s
