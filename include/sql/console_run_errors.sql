-- The records one run failed on (the retry queue rows it last wrote).
SELECT e.id, e.phase, e.status, e.customer_id, e.sumit_customer_id, e.error, e.attempts, c.name
FROM crm_sync_errors AS e
LEFT JOIN sumit_customers AS c ON c.id = e.customer_id
WHERE e.dag_id = %(dag_id)s AND e.dag_run_id = %(dag_run_id)s
ORDER BY e.id
LIMIT %(limit)s
