-- One page of the console's Customers list for a search with no state filter (or the synced one:
-- switch synced), and how many
-- customers match, counted up to count_limit (CustomerQuery.COUNT_LIMIT + 1: the page says "more
-- than 1,000" past it). The search's kind picks the columns (see CustomerQuery.params): an e-mail
-- ("@"): e-mail; a number: phone (with or without its dashes and spaces), local id, CRM id;
-- other text: name, e-mail, CRM id. Planned with the values, so the unused branches fold away.
-- The page and the count are two reads of `matching` (NOT MATERIALIZED: each is planned on its
-- own), each stopping early: a common word finds its page in id order through the primary key
-- and its count after count_limit matches (a page that is not full is its own count); a rare one is found through the trigram indexes of
-- `crmsync search-index` (include/sql/search_indexes.sql) when they exist (switch search_rows
-- off), else by reading every customer's narrow search row (switch search_rows on). One row per
-- customer of the page, each with the total; a single row of NULLs but the total when none matches.
WITH matching AS NOT MATERIALIZED (
    SELECT c.id FROM sumit_customers AS c
    -- an e-mail: the part up to its "@" through the index, then the whole search (email_key)
    WHERE ((%(kind)s::text = 'email' AND c.email ILIKE %(email_key)s AND (c.email || '') ILIKE %(pattern)s)
       OR (%(kind)s::text = 'number' AND (translate(c.phone, ' -().+/', '') LIKE %(digits)s
                                          OR c.id = %(search_id)s::bigint OR c.sumit_customer_id = %(search)s::text))
       OR (%(kind)s::text = 'text' AND (c.name ILIKE %(pattern)s OR c.email ILIKE %(pattern)s
                                        OR c.sumit_customer_id = %(search)s::text)))
    -- without the trigram indexes, only customers whose search row (crm_sync_customer_search, a
    -- seventh of their row's size) holds the search, or whose id or CRM id it is, are checked
    -- when search_rows: begin
    AND EXISTS (SELECT FROM crm_sync_customer_search AS s
                WHERE s.id = c.id
                  AND ((CASE WHEN %(kind)s::text = 'number' THEN s.digits LIKE %(digits)s ELSE s.doc LIKE lower(%(pattern)s) END)
                       OR s.id = %(search_id)s::bigint
                       OR s.id = (SELECT k.id FROM sumit_customers AS k WHERE k.sumit_customer_id = %(search)s::text)))
    -- when search_rows: end
    -- the synced filter with a search: each customer's state computed as the view computes it
    -- (crmsync_customer_sync_state, costed as cheap), as the customer is read. Written as "none of
    -- the other states" (other_states; a state is never NULL), which the planner expects of nearly
    -- every customer, as it is: asked "= 'synced'" of the view it expected a few, read every
    -- match of a common word and computed each one's state (164,000 at 1,000,000: 2.9 s)
    -- instead of stopping at the page and the count limit (47 ms)
    AND crmsync_customer_sync_state(c.id) <> ALL (%(other_states)s::text[])  -- when synced
), page AS MATERIALIZED (
    SELECT id FROM matching ORDER BY id LIMIT %(limit)s OFFSET %(offset)s
), counted AS MATERIALIZED (
    -- a page not full tells the total (PostgreSQL runs the count only when the CASE needs it)
    SELECT CASE WHEN (SELECT count(*) FROM page) < %(limit)s AND ((SELECT count(*) FROM page) > 0 OR %(offset)s = 0)
                THEN %(offset)s + (SELECT count(*) FROM page)
                ELSE (SELECT count(*) FROM (SELECT 1 FROM matching LIMIT %(count_limit)s) AS m) END AS total
)
SELECT t.total, s.id, s.sumit_customer_id, s.name, s.email, s.phone, s.company_name, s.city, s.updated_at,
       s.synced_at, s.crm_missing_since, s.push_error, s.open_conflicts, s.sync_state
FROM counted AS t
LEFT JOIN LATERAL (
    SELECT * FROM crm_sync_customer_states WHERE id IN (SELECT id FROM page)
) AS s ON true
ORDER BY s.id
