-- "Ignore" in the console: records no run should retry any more (kept, marked ignored).
UPDATE crm_sync_errors
SET status = 'ignored', resolved_at = now()
WHERE id = ANY(%(ids)s::bigint[]) AND status IN ('pending', 'gave_up')
RETURNING id
