-- After a complete pull, pending pull rejections this pull did not meet again are resolved
-- (the CRM fixed or removed the record).
UPDATE crm_sync_errors SET status = 'resolved', resolved_at = now()
WHERE status = 'pending' AND phase = 'pull' AND NOT (record_key = ANY(%(still_rejected)s::text[]))
