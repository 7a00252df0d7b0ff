-- The triggers of one request, stored before the receiver answers SUMIT: one row per CRM id
-- (the receiver keeps the last of an id a body repeats, with its number of hits). A trigger
-- for an id already pending is collapsed into its row: more hits, the newest action, and a new
-- seq, so an apply run that read the row before this trigger came leaves it pending
-- (include/sql/inbox_done.sql).
INSERT INTO crm_inbox AS i (entity_id, action, folder, shape, hits)
SELECT * FROM unnest(%(entity_id)s::text[], %(action)s::text[], %(folder)s::text[], %(shape)s::text[],
                     %(hits)s::integer[])
ON CONFLICT (entity_id) WHERE status = 'pending'
DO UPDATE SET action = EXCLUDED.action, folder = EXCLUDED.folder, shape = EXCLUDED.shape, hits = i.hits + EXCLUDED.hits,
              seq = nextval('crm_inbox_seq'), received_at = now()
RETURNING (xmax = 0) AS inserted
