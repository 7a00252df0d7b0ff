-- The start of a pull's matching (crmsync.core.matching): the key values of the local customers
-- no CRM id is linked to (a create in flight aside: lost_creates links it), for the keys in
-- force, into the session's crmsync_match_local (made by seen_ids.sql). Returns how many
-- customers have a value: with none, matching costs the pull nothing more.
WITH filled AS (
    INSERT INTO crmsync_match_local (customer_id, key, value)
    SELECT c.id, k.key, k.value
    FROM sumit_customers AS c
    CROSS JOIN LATERAL (VALUES ('tax_id', crmsync_match_value('tax_id', c.tax_id)),
                               ('email', crmsync_match_value('email', c.email)),
                               ('phone', crmsync_match_value('phone', c.phone))) AS k(key, value)
    WHERE c.sumit_customer_id IS NULL AND c.create_sent_at IS NULL
      AND k.value IS NOT NULL AND k.key = ANY(%(keys)s::text[])
    RETURNING customer_id
)
SELECT count(DISTINCT customer_id) FROM filled
