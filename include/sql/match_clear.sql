-- A pull that had nothing to match (no unlinked local customer with a key value): no record
-- can be ambiguous any more, so every waiting one is cleared. How many.
WITH cleared AS (
    UPDATE crm_sync_matches SET status = 'cleared', decided_at = now(), decided_by = %(dag_run_id)s
    WHERE status = 'waiting'
    RETURNING 1
)
SELECT count(*) FROM cleared
