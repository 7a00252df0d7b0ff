-- How many customers a push would send (the mass-change guard asks before a big one), and the
-- first five: the candidates of select_push_candidates.sql, plus the retry queue when the push
-- takes it (select_pending_pushes.sql).
WITH candidates AS (
    SELECT c.id, c.name
    FROM sumit_customers AS c
    WHERE (%(ids)s::bigint[] IS NULL OR c.id = ANY(%(ids)s::bigint[]))
      AND NOT (c.sumit_customer_id IS NULL
               AND EXISTS (SELECT 1 FROM crm_sync_matches AS m
                           WHERE m.customer_id = c.id AND m.status = 'waiting' AND m.side = 'local'))
      AND (NOT %(only_changed)s OR (
            c.synced_fingerprint IS DISTINCT FROM crmsync_local_fingerprint(c)
            AND NOT c.metadata ? 'crm_missing_since'
            AND NOT EXISTS (SELECT 1 FROM crm_sync_errors e
                            WHERE e.phase = 'push' AND e.status = 'gave_up' AND e.customer_id = c.id
                              AND e.fingerprint = crmsync_local_fingerprint(c))))
    UNION
    SELECT c.id, c.name
    FROM crm_sync_errors AS e
    JOIN sumit_customers AS c ON c.id = e.customer_id
    WHERE %(retry_queue)s AND e.phase = 'push' AND e.status = 'pending'
      AND (%(ids)s::bigint[] IS NULL OR e.customer_id = ANY(%(ids)s::bigint[]))
)
SELECT count(*),
       (SELECT jsonb_agg(jsonb_build_object('id', id, 'name', name) ORDER BY id)
        FROM (SELECT id, name FROM candidates ORDER BY id LIMIT 5) AS first)
FROM candidates
