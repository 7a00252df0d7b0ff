-- The start of a pull's matching (crmsync.core.matching): the key values of the local customers
-- no CRM id is linked to (a create in flight aside: lost_creates links it), for the keys in
-- force, into the session's crmsync_match_local (made by seen_ids.sql). Returns how many
-- customers have a value: with none, matching costs the pull nothing more.
WITH filled AS (
    INSERT INTO crmsync_match_local (customer_id, key, value)
    SELECT c.id, k.key, k.value
    FROM sumit_customers AS c
    CROSS JOIN LATERAL (SELECT u.key, crmsync_match_value(u.key, CASE u.key WHEN 'tax_id' THEN c.tax_id
                                                                          WHEN 'email' THEN c.email
                                                                          WHEN 'phone' THEN c.phone END)
                        FROM unnest(%(keys)s::text[]) AS u(key)) AS k(key, value)  -- the keys in force only
    WHERE c.sumit_customer_id IS NULL AND c.create_sent_at IS NULL
      AND k.value IS NOT NULL
    RETURNING customer_id
)
SELECT count(DISTINCT customer_id) FROM filled
