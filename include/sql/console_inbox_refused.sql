-- The latest triggers the receiver refused or a run gave up on: why, and the start of the body.
SELECT id, first_received_at, entity_id, reason, excerpt
FROM crm_inbox
WHERE status = 'rejected'
ORDER BY id DESC
LIMIT %(limit)s
