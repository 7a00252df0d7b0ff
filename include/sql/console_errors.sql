-- The retry queue: records whose push (or pull) failed, with their reasons and attempts.
SELECT e.id, e.phase, e.status, e.customer_id, e.sumit_customer_id, e.record_key, e.error, e.attempts,
       e.created_at, e.last_failed_at, e.dag_id, e.dag_run_id, c.name
FROM crm_sync_errors AS e
LEFT JOIN sumit_customers AS c ON c.id = e.customer_id
WHERE e.status = ANY(%(statuses)s::text[])
ORDER BY e.last_failed_at DESC, e.id DESC
LIMIT %(limit)s OFFSET %(offset)s
