-- A pull's plan, read from its own (uncommitted) rows of the change journal: per changed
-- field of the customers that existed before it (``before`` not NULL), how many it changes,
-- how many it blanks (a non-empty value becomes empty), and the first few examples. Custom
-- fields are named metadata.<key>; the vanished flag is counted apart (pull_plan_counts.sql). Of a
-- link (direction link), only the values it overwrites count: never a blank it fills.
WITH journal AS (
    SELECT id, customer_id, sumit_customer_id, before, after, direction
    FROM crm_sync_changes
    WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND direction IN ('pull', 'link') AND before IS NOT NULL
), changes AS (
    SELECT j.id, j.customer_id, j.sumit_customer_id, e.key AS field, j.before -> e.key AS b, e.value AS a
    FROM journal AS j CROSS JOIN LATERAL jsonb_each(j.after - 'metadata') AS e
    WHERE j.direction = 'pull'
       OR (e.key <> 'sumit_customer_id' AND j.before -> e.key NOT IN ('null'::jsonb, '""'::jsonb))
    UNION ALL
    SELECT j.id, j.customer_id, j.sumit_customer_id, 'metadata.' || e.key, j.before -> 'metadata' -> e.key, e.value
    FROM journal AS j CROSS JOIN LATERAL jsonb_each(j.after -> 'metadata') AS e
    WHERE j.direction = 'pull' AND j.after ? 'metadata' AND e.key <> 'crm_missing_since'
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY field ORDER BY id) AS n FROM changes
)
SELECT field,
       count(*) AS changed,
       count(*) FILTER (WHERE b IS NOT NULL AND b NOT IN ('null'::jsonb, '""'::jsonb)
                          AND (a IS NULL OR a IN ('null'::jsonb, '""'::jsonb))) AS blanked,
       coalesce(jsonb_agg(jsonb_build_object('customer_id', customer_id, 'sumit_customer_id', sumit_customer_id,
                                             'before', b, 'after', a) ORDER BY id)
                FILTER (WHERE n <= %(examples)s), '[]'::jsonb) AS examples
FROM ranked
GROUP BY field
ORDER BY field
