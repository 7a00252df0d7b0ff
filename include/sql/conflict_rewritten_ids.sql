-- The customers a resolve run rewrote whose rewrite changed a field SUMIT holds (a column):
-- its own journal rows of direction resolve. Custom fields are never sent to SUMIT, so a
-- customer whose rewrite changed only those has nothing to push.
SELECT customer_id
FROM crm_sync_changes
WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND direction = 'resolve'
  AND before IS NOT NULL
  AND after - 'metadata' - 'sumit_customer_id' <> '{}'::jsonb
ORDER BY customer_id
