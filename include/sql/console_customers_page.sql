-- One page of the console's Customers list (crm_sync_customer_states, in id order) for a search,
-- a sync state, or both (console_customers_scan.sql lists every customer, the synced and the
-- changed without a search), and how many customers match: every one for a state alone, up to
-- count_limit with a search (CustomerQuery.SEARCH_COUNT_LIMIT + 1: the page says "more than
-- 1,000" past it). The search's kind picks the columns (see CustomerQuery.params): an e-mail
-- ("@"): e-mail; a number: phone (with or without its dashes and spaces), local id, CRM id; other
-- text: name, e-mail, CRM id. Planned with the values, so the unused branches fold away; the
-- parts marked "when <switch>" and "unless <switch>" are chosen by crmsync.db.sql.load_switched.
--
-- In two steps, so that the planner never reads a million customers' wide rows to find a few:
-- the candidates (customers who could match), then each candidate in id order checked against the
-- search and the state through its customer row, found by id, until the page and the count's
-- limit are filled (`hits`: one read for both). The check is a subquery per candidate, which the
-- planner cannot turn into a read of every customer: asked as a join, it costed ILIKE on the wide
-- row as free and read customers in id order, 50,000 of them for a name's two words (141-195 ms
-- at 1,000,000) and all of them for a word only the newest customers hold (818 ms). The
-- candidates (ConsoleQueries.customers chooses):
--   * a state (switch state_sets): its customers, from the two small tables (push errors, open
--     conflicts), the matches waiting, and partial indexes (the missing flag, the unlinked, the
--     local_changed flag that crmsync_touch_updated_at keeps, include/sql/schema.sql);
--   * a search, with no state or the synced one, when the first search rows hold it often (switches
--     stream and search_rows, console_customers_search_probe.sql): the search rows (crm_sync_customer_search, a
--     seventh of a customer's row) in id order, read only until the page and the count are filled;
--   * a rarer one, with the trigram indexes of `crmsync search-index` (switch trigram): the
--     customers those indexes find;
--   * a rarer one, without them (switch search_packs): every search row that holds it, read at
--     once, most of them from the packs of 56 (crm_sync_customer_search_packed).
-- One row per customer of the page, each with the total; a single row of NULLs but the total when
-- none matches.
WITH candidates AS MATERIALIZED (  -- unless stream
WITH candidates AS NOT MATERIALIZED (  -- when stream
    -- when state_sets: begin
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
    -- when state_sets: end
    -- when search_rows: begin
    -- the search in the row's text (name and e-mail) or digits (phone), or the search is its id
    -- or CRM id. strpos first: the same substring test, a fifth cheaper than LIKE's walk of each
    -- row a character at a time (62 against 77 ms over a million rows); LIKE beside it keeps the
    -- planner's estimate of how many rows hold it (of a function alone it guesses a third, and
    -- reads the table in one process)
    SELECT s.id FROM crm_sync_customer_search AS s
    WHERE ((CASE WHEN %(kind)s::text = 'number'
                 THEN strpos(s.digits, %(digits_only)s) > 0 AND s.digits LIKE %(digits)s
                 ELSE strpos(s.doc, lower(%(search)s)) > 0 AND s.doc LIKE lower(%(pattern)s) END)
           OR s.id = %(search_id)s::bigint
           OR s.id = (SELECT k.id FROM sumit_customers AS k WHERE k.sumit_customer_id = %(search)s::text))
    -- when search_rows: end
    -- when search_packs: begin
    -- the search in the text (name and e-mail) or digits (phone) of the packed search rows: each
    -- pack that holds it, then the packed customers whose own text holds it (strpos: LIKE walks a
    -- pack a character at a time, three times as long)
    SELECT u.id
    FROM crm_sync_customer_search_packed AS p,
         unnest(p.ids, string_to_array(CASE WHEN %(kind)s::text = 'number' THEN p.digits ELSE p.doc END, E'\x1f'))
             AS u(id, text)
    WHERE strpos(CASE WHEN %(kind)s::text = 'number' THEN p.digits ELSE p.doc END,
                 CASE WHEN %(kind)s::text = 'number' THEN %(digits_only)s ELSE lower(%(search)s) END) > 0
      AND strpos(u.text, CASE WHEN %(kind)s::text = 'number' THEN %(digits_only)s ELSE lower(%(search)s) END) > 0
    UNION ALL
    -- what the packs do not hold, in its search rows: customers added since the packing (every
    -- customer when nothing is packed), and those whose text changed since. strpos first: a fifth
    -- cheaper than LIKE's walk; LIKE beside it keeps the planner's estimate of how many rows hold
    -- it (of a function alone it guesses a third, and reads the table in one process)
    SELECT s.id FROM crm_sync_customer_search AS s
    WHERE s.id > coalesce((SELECT k.packed_through FROM crm_sync_customer_search_pack AS k), -1)
      AND (CASE WHEN %(kind)s::text = 'number'
                THEN strpos(s.digits, %(digits_only)s) > 0 AND s.digits LIKE %(digits)s
                ELSE strpos(s.doc, lower(%(search)s)) > 0 AND s.doc LIKE lower(%(pattern)s) END)
    UNION ALL
    SELECT r.id FROM crm_sync_customer_search_recent AS r
    WHERE CASE WHEN %(kind)s::text = 'number'
               THEN strpos(r.digits, %(digits_only)s) > 0
               ELSE strpos(r.doc, lower(%(search)s)) > 0 END
    UNION ALL
    -- or the search is its id or CRM id
    SELECT %(search_id)s::bigint WHERE %(search_id)s::bigint IS NOT NULL
    UNION ALL
    SELECT k.id FROM sumit_customers AS k WHERE k.sumit_customer_id = %(search)s::text
    -- when search_packs: end
    -- when trigram: begin
    -- in the words of the indexes; an e-mail: the part up to its "@" (email_key, see
    -- CustomerQuery.params), the whole search is checked below
    SELECT c.id FROM sumit_customers AS c
    WHERE ((%(kind)s::text = 'email' AND c.email ILIKE %(email_key)s)
       OR (%(kind)s::text = 'number' AND (translate(c.phone, ' -().+/', '') LIKE %(digits)s
                                          OR c.id = %(search_id)s::bigint OR c.sumit_customer_id = %(search)s::text))
       OR (%(kind)s::text = 'text' AND (c.name ILIKE %(pattern)s OR c.email ILIKE %(pattern)s
                                        OR c.sumit_customer_id = %(search)s::text)))
    -- when trigram: end
), matching AS NOT MATERIALIZED (
    -- DISTINCT: a customer has one search row, but no unique key says so
    SELECT f.id FROM (SELECT DISTINCT id FROM candidates ORDER BY id) AS f  -- unless stream
    SELECT DISTINCT f.id FROM candidates AS f  -- when stream
    -- the customer's row and, with a state, its two small joins (crm_sync_customer_states):
    -- the search and whether it is linked (the synced and changed states need it) are tested on
    -- the row, the state after the joins; a state written as "none of the other states"
    -- (other_states; a state is never NULL)
    WHERE (SELECT true FROM crm_sync_customer_states AS c
           WHERE c.id = f.id
             AND (%(search)s::text IS NULL
                  OR (%(kind)s::text = 'email' AND c.email ILIKE %(pattern)s)
                  OR (%(kind)s::text = 'number' AND (translate(c.phone, ' -().+/', '') LIKE %(digits)s
                                                     OR c.id = %(search_id)s::bigint OR c.sumit_customer_id = %(search)s::text))
                  OR (%(kind)s::text = 'text' AND (c.name ILIKE %(pattern)s OR c.email ILIKE %(pattern)s
                                                   OR c.sumit_customer_id = %(search)s::text)))
             AND c.sumit_customer_id IS NOT NULL  -- when linked
             AND c.sync_state <> ALL (%(other_states)s::text[])  -- when state
          )
), hits AS MATERIALIZED (  -- the first matches in id order, for the page and the count (all, without count_limit)
    SELECT id FROM matching ORDER BY id
    LIMIT CASE WHEN %(count_limit)s::bigint IS NOT NULL THEN greatest(%(offset)s + %(limit)s, %(count_limit)s::bigint) END
), page AS MATERIALIZED (
    SELECT id FROM hits ORDER BY id LIMIT %(limit)s OFFSET %(offset)s
), counted AS MATERIALIZED (
    -- a page not full tells the total, which can be over count_limit on a later page
    SELECT CASE WHEN (SELECT count(*) FROM page) < %(limit)s AND ((SELECT count(*) FROM page) > 0 OR %(offset)s = 0)
                THEN %(offset)s + (SELECT count(*) FROM page)
                ELSE least((SELECT count(*) FROM hits), %(count_limit)s::bigint) END AS total
)
SELECT t.total, s.id, s.sumit_customer_id, s.name, s.email, s.phone, s.company_name, s.city, s.updated_at,
       s.synced_at, s.crm_missing_since, s.push_error, s.open_conflicts, s.sync_state
FROM counted AS t
LEFT JOIN LATERAL (
    SELECT * FROM crm_sync_customer_states WHERE id IN (SELECT id FROM page)
) AS s ON true
ORDER BY s.id
