-- A customer's history from the change journal, newest first.
SELECT changed_at, dag_id, dag_run_id, direction, sumit_customer_id, before, after
FROM crm_sync_history
WHERE customer_id = %(id)s
ORDER BY changed_at DESC
LIMIT %(limit)s
