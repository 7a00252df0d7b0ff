-- The retry queue of the push phase: customers whose last push failed and is not given up.
SELECT e.customer_id
FROM crm_sync_errors e
JOIN sumit_customers c ON c.id = e.customer_id
WHERE e.phase = 'push' AND e.status = 'pending'
  AND (%(ids)s::bigint[] IS NULL OR e.customer_id = ANY(%(ids)s::bigint[]))
ORDER BY e.customer_id
