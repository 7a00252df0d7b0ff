-- One page of the console's Customers list (crm_sync_customer_states, in id order) and how many
-- customers match, in one scan: searched and filtered by sync state. The search's kind picks the
-- columns (see CustomerQuery.params): an e-mail ("@"): e-mail; a number: phone (with or without
-- its dashes and spaces), local id, CRM id; other text: name, e-mail, CRM id. Planned with the
-- values, so the unused branches fold away, and the sync state (its fingerprint and the two
-- joins) is computed for every row only when a state is asked for; else for the page's rows.
-- One row per customer of the page, each with the total; a single row of NULLs but the total
-- when none matches.
WITH matched AS MATERIALIZED (
    SELECT id
    FROM crm_sync_customer_states
    WHERE (%(search)s::text IS NULL
           OR (%(kind)s::text = 'email' AND email ILIKE %(pattern)s)
           OR (%(kind)s::text = 'number' AND (translate(phone, ' -().+/', '') LIKE %(digits)s
                                              OR id = %(search_id)s::bigint OR sumit_customer_id = %(search)s::text))
           OR (%(kind)s::text = 'text' AND (name ILIKE %(pattern)s OR email ILIKE %(pattern)s
                                            OR sumit_customer_id = %(search)s::text)))
      AND (%(state)s::text IS NULL OR sync_state = %(state)s::text)
)
SELECT t.total, s.id, s.sumit_customer_id, s.name, s.email, s.phone, s.company_name, s.city, s.updated_at,
       s.synced_at, s.crm_missing_since, s.push_error, s.open_conflicts, s.sync_state
FROM (SELECT count(*) AS total FROM matched) AS t
LEFT JOIN LATERAL (
    SELECT * FROM crm_sync_customer_states
    WHERE id IN (SELECT id FROM matched ORDER BY id LIMIT %(limit)s OFFSET %(offset)s)
) AS s ON true
ORDER BY s.id
