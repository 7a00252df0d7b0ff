-- The named conflicts, locked until the resolve ends, with what deciding each needs: the
-- customer's newest open conflict (an older open one is superseded by it) and the customer's
-- row as it is now, as its journaled values (columns, and custom fields under "metadata"),
-- NULL when the row is gone. An id no conflict has is simply not returned.
SELECT k.id, k.customer_id, k.sumit_customer_id, k.winner, k.local_values, k.crm_values,
       k.resolution, k.resolved_by,
       (SELECT max(o.id) FROM crm_sync_conflicts o
        WHERE o.customer_id = k.customer_id AND o.resolution IS NULL) AS newest_open_id,
       CASE WHEN c.id IS NULL THEN NULL ELSE crmsync_journal_values(c) END AS current_values
FROM crm_sync_conflicts AS k
LEFT JOIN sumit_customers AS c ON c.id = k.customer_id
WHERE k.id = ANY(%(ids)s::bigint[])
ORDER BY k.id
FOR UPDATE OF k
