-- The customers a revert run restored whose restore changed a field SUMIT holds (a column):
-- its own journal rows of direction revert. Custom fields and the vanished flag are never
-- sent to SUMIT, so a customer whose restore changed only those has nothing to push.
SELECT customer_id
FROM crm_sync_changes
WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND direction = 'revert'
  AND before IS NOT NULL
  AND after - 'metadata' - 'sumit_customer_id' <> '{}'::jsonb
ORDER BY customer_id
