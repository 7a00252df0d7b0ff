-- Close the triggers an apply run dealt with, in the transaction that applied them: a row is
-- closed only if no trigger came for its id since the run read it (its seq is the one read);
-- otherwise it stays pending for the next run. Returns the ids closed.
UPDATE crm_inbox AS i
SET status = u.status, reason = u.reason, done_at = now(), dag_id = %(dag_id)s, dag_run_id = %(dag_run_id)s
FROM unnest(%(id)s::bigint[], %(seq)s::bigint[], %(status)s::text[], %(reason)s::text[]) AS u(id, seq, status, reason)
WHERE i.id = u.id AND i.seq = u.seq AND i.status = 'pending'
RETURNING i.id
