-- The oldest pending triggers, at most %(limit)s, after id %(after_id)s: what an apply run reads.
SELECT id, entity_id, action, folder, seq, attempts, hits, first_received_at
FROM crm_inbox
WHERE status = 'pending' AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s
