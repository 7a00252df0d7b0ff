-- Triggers stored and not applied yet: the receiver's crmsync.receiver.inbox_pending gauge.
SELECT count(*) FROM crm_inbox WHERE status = 'pending'
