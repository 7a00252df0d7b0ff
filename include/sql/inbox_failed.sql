-- Triggers whose customer could not be read this time: one more attempt, the reason; they
-- stay pending for the next run.
UPDATE crm_inbox AS i
SET attempts = i.attempts + 1, last_error = u.error
FROM unnest(%(id)s::bigint[], %(error)s::text[]) AS u(id, error)
WHERE i.id = u.id AND i.status = 'pending'
RETURNING i.id, i.attempts
