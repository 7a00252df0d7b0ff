-- A pull's plan, counted from its own (uncommitted) rows of the change journal: customers it
-- creates, existing customers whose values it changes (the vanished flag aside), and
-- existing customers it newly flags as no longer in the CRM. A link (direction link) counts
-- as a change only where it overwrites a value (a conflict decided for the CRM): filling a
-- blank, or the CRM id itself, is no change to what the table held.
SELECT (SELECT coalesce(sum(cardinality(customer_ids)), 0) FROM crm_sync_created
        WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND direction = 'pull') AS created,
       count(*) FILTER (WHERE direction = 'pull' AND before IS NOT NULL
                          AND (after - 'metadata' <> '{}'::jsonb
                               OR coalesce(after -> 'metadata', '{}'::jsonb) - 'crm_missing_since' <> '{}'::jsonb))
       + count(*) FILTER (WHERE direction = 'link' AND EXISTS (
             SELECT 1 FROM jsonb_each(before - 'metadata' - 'sumit_customer_id') AS b(k, v)
             WHERE v NOT IN ('null'::jsonb, '""'::jsonb)))
           AS changed,
       count(*) FILTER (WHERE direction = 'pull' AND before IS NOT NULL
                          AND after -> 'metadata' -> 'crm_missing_since' IS NOT NULL
                          AND after -> 'metadata' -> 'crm_missing_since' <> 'null'::jsonb) AS vanished
FROM crm_sync_changes
WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND direction IN ('pull', 'link')
