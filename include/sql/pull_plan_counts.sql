-- A pull's plan, counted from its own (uncommitted) rows of the change journal: customers it
-- creates, existing customers whose values it changes (the vanished flag aside), and
-- existing customers it newly flags as no longer in the CRM.
SELECT (SELECT coalesce(sum(cardinality(customer_ids)), 0) FROM crm_sync_created
        WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND direction = 'pull') AS created,
       count(*) FILTER (WHERE before IS NOT NULL
                          AND (after - 'metadata' <> '{}'::jsonb
                               OR coalesce(after -> 'metadata', '{}'::jsonb) - 'crm_missing_since' <> '{}'::jsonb))
           AS changed,
       count(*) FILTER (WHERE before IS NOT NULL AND after -> 'metadata' -> 'crm_missing_since' IS NOT NULL
                          AND after -> 'metadata' -> 'crm_missing_since' <> 'null'::jsonb) AS vanished
FROM crm_sync_changes
WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND direction = 'pull'
