-- Mark conflicts resolved by this run: each deciding conflict, and its customer's older open
-- conflicts, which it supersedes. Returns every conflict marked, with the one that decided it.
WITH decided AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(customer_ids)s::bigint[]) AS d(id, customer_id)
)
UPDATE crm_sync_conflicts AS k
SET resolution = %(keep)s, resolved_at = now(), resolved_by = %(dag_run_id)s
FROM decided AS d
WHERE k.customer_id = d.customer_id AND k.id <= d.id AND k.resolution IS NULL
RETURNING k.id, d.id
