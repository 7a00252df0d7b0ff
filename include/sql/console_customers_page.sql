-- One page of the console's Customers list (crm_sync_customer_states, in id order) and how many
-- customers match, for a search or a sync state other than synced (console_customers_scan.sql
-- lists the others). The search's kind picks the columns (see CustomerQuery.params): an e-mail
-- ("@"): e-mail; a number: phone (with or without its dashes and spaces), local id, CRM id;
-- other text: name, e-mail, CRM id. Planned with the values, so the unused branches fold away.
-- A state starts from its candidates, never from every row: those with a push error or an open
-- conflict (the two small tables), those flagged missing or not linked (partial indexes), those
-- waiting for a match, and those whose local_changed flag is not false (a partial index; the
-- flag is kept by crmsync_touch_updated_at, include/sql/schema.sql); the state of each candidate
-- is then computed as the view computes it, one candidate at a time. With a search and no
-- state, every row is searched (the parts marked "when state" and "unless state" are chosen by
-- crmsync.db.sql.load_switched).
-- One row per customer of the page, each with the total; a single row of NULLs but the total
-- when none matches.
WITH candidates AS MATERIALIZED (
    SELECT customer_id AS id FROM crm_sync_errors
    WHERE %(state)s::text IN ('push_failed', 'given_up')
      AND phase = 'push' AND status IN ('pending', 'gave_up') AND customer_id IS NOT NULL
    UNION
    SELECT customer_id FROM crm_sync_conflicts
    WHERE %(state)s::text = 'conflict' AND resolution IS NULL AND customer_id IS NOT NULL
    UNION
    SELECT id FROM sumit_customers WHERE %(state)s::text = 'missing' AND (metadata ->> 'crm_missing_since') IS NOT NULL
    UNION
    SELECT customer_id FROM crm_sync_matches
    WHERE %(state)s::text = 'awaiting_match' AND status = 'waiting' AND side = 'local' AND customer_id IS NOT NULL
    UNION
    SELECT id FROM sumit_customers WHERE %(state)s::text = 'never_synced' AND sumit_customer_id IS NULL
    UNION
    SELECT id FROM sumit_customers
    WHERE %(state)s::text = 'changed' AND local_changed IS NOT FALSE AND sumit_customer_id IS NOT NULL
), matched AS MATERIALIZED (
    SELECT s.id
    FROM candidates AS k  -- when state
    -- one candidate at a time (OFFSET 0 keeps it so): its row and its two small joins by index
    CROSS JOIN LATERAL (SELECT * FROM crm_sync_customer_states AS v WHERE v.id = k.id OFFSET 0) AS s  -- when state
    FROM crm_sync_customer_states AS s  -- unless state
    WHERE s.sync_state = %(state)s::text  -- when state
    WHERE true  -- unless state
      AND (%(search)s::text IS NULL
           OR (%(kind)s::text = 'email' AND s.email ILIKE %(pattern)s)
           OR (%(kind)s::text = 'number' AND (translate(s.phone, ' -().+/', '') LIKE %(digits)s
                                              OR s.id = %(search_id)s::bigint OR s.sumit_customer_id = %(search)s::text))
           OR (%(kind)s::text = 'text' AND (s.name ILIKE %(pattern)s OR s.email ILIKE %(pattern)s
                                            OR s.sumit_customer_id = %(search)s::text)))
)
SELECT t.total, s.id, s.sumit_customer_id, s.name, s.email, s.phone, s.company_name, s.city, s.updated_at,
       s.synced_at, s.crm_missing_since, s.push_error, s.open_conflicts, s.sync_state
FROM (SELECT count(*) AS total FROM matched) AS t
LEFT JOIN LATERAL (
    SELECT * FROM crm_sync_customer_states
    WHERE id IN (SELECT id FROM matched ORDER BY id LIMIT %(limit)s OFFSET %(offset)s)
) AS s ON true
ORDER BY s.id
