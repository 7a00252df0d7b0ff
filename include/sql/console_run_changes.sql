-- The customers one run changed, from the change journal.
SELECT h.customer_id, h.changed_at, h.direction, h.sumit_customer_id, h.before, h.after, c.name
FROM crm_sync_history AS h
LEFT JOIN sumit_customers AS c ON c.id = h.customer_id
WHERE h.dag_id = %(dag_id)s AND h.dag_run_id = %(dag_run_id)s
ORDER BY h.customer_id
LIMIT %(limit)s
