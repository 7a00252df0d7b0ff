-- Open conflicts, newest first: both versions, the winner the policy chose, and the customer now.
SELECT k.id, k.dag_id, k.dag_run_id, k.customer_id, k.sumit_customer_id, k.winner, k.policy,
       k.local_values, k.crm_values, k.created_at, c.name
FROM crm_sync_conflicts AS k
LEFT JOIN sumit_customers AS c ON c.id = k.customer_id
WHERE k.resolution IS NULL
ORDER BY k.id DESC
LIMIT %(limit)s OFFSET %(offset)s
