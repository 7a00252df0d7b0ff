-- The retry queue's size by status.
SELECT status, count(*) FROM crm_sync_errors WHERE status IN ('pending', 'gave_up') GROUP BY status
