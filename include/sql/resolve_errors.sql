-- Pending records of one phase that have now synced.
UPDATE crm_sync_errors SET status = 'resolved', resolved_at = now()
WHERE status = 'pending' AND phase = %(phase)s AND record_key = ANY(%(record_keys)s::text[])
