-- One page of the console's Customers list with no search: every customer, those in sync
-- (state 'synced'), changed locally ('changed'), flagged missing ('missing') or never synced
-- ('never_synced'), and how many there are, without computing any customer's state but the
-- page's. A customer's state, as the view crm_sync_customer_states orders them, is push_failed
-- or given_up when it has a push error, conflict when an open conflict, missing when the
-- missing flag (these four whether linked or not); then, not linked: awaiting_match when a
-- match waits for it, else never_synced; linked: changed when its local copy changed
-- (`changed`: local_changed's index; where it is NULL, a row another writer inserted, by its
-- fingerprint), else synced. So a state is its own set less the customers of the sets ahead of
-- it (`ahead`: from the small tables, and the flag's index), and its total a count of small
-- sets, or of the customers' and linked customers' counts that crm_sync_customer_counts keeps
-- (include/sql/schema.sql: a sum of a few rows); the page is read in id order through the
-- primary key or a partial index (not linked, flagged missing) and stops after it. One row per
-- customer of the page, each with the total; a single row of NULLs but the total when none
-- matches. The parts marked "when <state>" are chosen by crmsync.db.sql.load_switched.
WITH ahead AS MATERIALIZED (  -- customers in a state ahead of the one asked for
    SELECT e.customer_id AS id
    FROM crm_sync_errors AS e JOIN sumit_customers AS c ON c.id = e.customer_id
    WHERE e.phase = 'push' AND e.status IN ('pending', 'gave_up')
      AND c.sumit_customer_id IS NOT NULL  -- when linked
      AND c.sumit_customer_id IS NULL  -- when never_synced
    UNION
    SELECT k.customer_id
    FROM crm_sync_conflicts AS k JOIN sumit_customers AS c ON c.id = k.customer_id
    WHERE k.resolution IS NULL
      AND c.sumit_customer_id IS NOT NULL  -- when linked
      AND c.sumit_customer_id IS NULL  -- when never_synced
    -- unless missing: begin
    UNION
    SELECT id FROM sumit_customers
    WHERE (metadata ->> 'crm_missing_since') IS NOT NULL
      AND sumit_customer_id IS NOT NULL  -- when linked
      AND sumit_customer_id IS NULL  -- when never_synced
    -- unless missing: end
    -- when never_synced: begin
    UNION
    SELECT m.customer_id
    FROM crm_sync_matches AS m JOIN sumit_customers AS c ON c.id = m.customer_id
    WHERE m.status = 'waiting' AND m.side = 'local' AND c.sumit_customer_id IS NULL
    -- when never_synced: end
), changed AS MATERIALIZED (  -- linked customers whose local copy changed  -- when linked
    SELECT c.id FROM sumit_customers AS c  -- when linked
    WHERE c.local_changed IS NOT FALSE AND c.sumit_customer_id IS NOT NULL  -- when linked
      AND (c.local_changed OR c.synced_fingerprint IS DISTINCT FROM crmsync_local_fingerprint(c))  -- when linked
), missing AS MATERIALIZED (  -- customers flagged missing, through the flag's index  -- when missing
    SELECT id FROM sumit_customers WHERE (metadata ->> 'crm_missing_since') IS NOT NULL  -- when missing
)
SELECT t.total, s.id, s.sumit_customer_id, s.name, s.email, s.phone, s.company_name, s.city, s.updated_at,
       s.synced_at, s.crm_missing_since, s.push_error, s.open_conflicts, s.sync_state
FROM (SELECT coalesce(sum(customers), 0)::bigint AS total FROM crm_sync_customer_counts) AS t  -- when all
FROM (SELECT (SELECT coalesce(sum(linked), 0)::bigint FROM crm_sync_customer_counts)  -- when synced
             - (SELECT count(*) FROM (SELECT id FROM ahead UNION SELECT id FROM changed) AS o) AS total) AS t  -- when synced
FROM (SELECT count(*) AS total FROM changed AS g WHERE g.id NOT IN (SELECT id FROM ahead)) AS t  -- when changed
FROM (SELECT count(*) AS total FROM missing AS g WHERE g.id NOT IN (SELECT id FROM ahead)) AS t  -- when missing
FROM (SELECT (SELECT coalesce(sum(customers - linked), 0)::bigint FROM crm_sync_customer_counts)  -- when never_synced
             - (SELECT count(*) FROM ahead) AS total) AS t  -- when never_synced
LEFT JOIN LATERAL (
    SELECT * FROM crm_sync_customer_states
    WHERE id IN (
        SELECT c.id FROM sumit_customers AS c ORDER BY c.id LIMIT %(limit)s OFFSET %(offset)s  -- when all
        SELECT c.id FROM sumit_customers AS c  -- when synced
        WHERE c.sumit_customer_id IS NOT NULL  -- when synced
          AND c.id NOT IN (SELECT id FROM ahead) AND c.id NOT IN (SELECT id FROM changed)  -- when synced
        ORDER BY c.id LIMIT %(limit)s OFFSET %(offset)s  -- when synced
        SELECT g.id FROM changed AS g WHERE g.id NOT IN (SELECT id FROM ahead)  -- when changed
        ORDER BY g.id LIMIT %(limit)s OFFSET %(offset)s  -- when changed
        SELECT g.id FROM missing AS g WHERE g.id NOT IN (SELECT id FROM ahead)  -- when missing
        ORDER BY g.id LIMIT %(limit)s OFFSET %(offset)s  -- when missing
        SELECT c.id FROM sumit_customers AS c  -- when never_synced
        WHERE c.sumit_customer_id IS NULL AND c.id NOT IN (SELECT id FROM ahead)  -- when never_synced
        ORDER BY c.id LIMIT %(limit)s OFFSET %(offset)s  -- when never_synced
    )
) AS s ON true
ORDER BY s.id
