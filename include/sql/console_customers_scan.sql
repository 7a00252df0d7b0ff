-- One page of the console's Customers list with no search: every customer, those in sync
-- (state 'synced') or those changed locally ('changed'), and how many there are, without
-- computing any customer's state but the page's. A linked customer's state, as the view
-- crm_sync_customer_states orders them, is push_failed, given_up, conflict or missing when it
-- has a push error, an open conflict or the missing flag (`ahead`: from the two small tables and
-- the flag's index), else changed when its local copy changed (`changed`: local_changed's index;
-- where it is NULL, a row another writer inserted, by its fingerprint), else synced. So the
-- totals are counts of small sets, and the customers' and linked customers' counts, which
-- crm_sync_customer_counts keeps (include/sql/schema.sql: a sum of a few rows); every
-- customer's page is read in id order through the primary key and stops after it. One row per
-- customer of the page, each with the total; a single row of NULLs but the total when none
-- matches. The parts marked "when synced" / "when changed" are chosen by crmsync.db.sql.load_switched.
WITH ahead AS MATERIALIZED (  -- linked customers in a state ahead of changed and synced
    SELECT e.customer_id AS id
    FROM crm_sync_errors AS e JOIN sumit_customers AS c ON c.id = e.customer_id
    WHERE e.phase = 'push' AND e.status IN ('pending', 'gave_up') AND c.sumit_customer_id IS NOT NULL
    UNION
    SELECT k.customer_id
    FROM crm_sync_conflicts AS k JOIN sumit_customers AS c ON c.id = k.customer_id
    WHERE k.resolution IS NULL AND c.sumit_customer_id IS NOT NULL
    UNION
    SELECT id FROM sumit_customers
    WHERE (metadata ->> 'crm_missing_since') IS NOT NULL AND sumit_customer_id IS NOT NULL
), changed AS MATERIALIZED (  -- linked customers whose local copy changed
    SELECT c.id FROM sumit_customers AS c
    WHERE c.local_changed IS NOT FALSE AND c.sumit_customer_id IS NOT NULL
      AND (c.local_changed OR c.synced_fingerprint IS DISTINCT FROM crmsync_local_fingerprint(c))
)
SELECT t.total, s.id, s.sumit_customer_id, s.name, s.email, s.phone, s.company_name, s.city, s.updated_at,
       s.synced_at, s.crm_missing_since, s.push_error, s.open_conflicts, s.sync_state
FROM (SELECT coalesce(sum(customers), 0)::bigint AS total FROM crm_sync_customer_counts) AS t  -- when all
FROM (SELECT (SELECT coalesce(sum(linked), 0)::bigint FROM crm_sync_customer_counts)  -- when synced
             - (SELECT count(*) FROM (SELECT id FROM ahead UNION SELECT id FROM changed) AS o) AS total) AS t  -- when synced
FROM (SELECT count(*) AS total FROM changed AS g WHERE g.id NOT IN (SELECT id FROM ahead)) AS t  -- when changed
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
    )
) AS s ON true
ORDER BY s.id
