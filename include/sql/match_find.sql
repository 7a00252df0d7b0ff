-- After the whole listing: the CRM customers set aside (crmsync_match_crm) and the unlinked
-- local customers (crmsync_match_local), matched set based. A candidate pair shares a key's
-- value (never a pair a person excluded); each record's candidates are those of the first key,
-- in %(keys)s order, that finds any. A pair links when each side is the other's only
-- candidate; every other record with a candidate is held for a person, unless each of its
-- candidates is linked to another customer by this very match (it is then as if it had none,
-- as the next run would see it); a CRM customer left with no candidate (its pairs excluded by a
-- person, or linked to others) is new. Written to crmsync_match_found; counts by kind.
WITH crm_keys AS (
    SELECT c.sumit_customer_id, k.key, k.value, k.ord
    FROM crmsync_match_crm AS c
    CROSS JOIN LATERAL (SELECT o.key, o.ord, crmsync_match_value(o.key, CASE o.key WHEN 'tax_id' THEN c.row ->> 5
                                                                                  WHEN 'email' THEN c.row ->> 2
                                                                                  WHEN 'phone' THEN c.row ->> 3 END)
                        FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS o(key, ord)) AS k(key, ord, value)
    WHERE k.value IS NOT NULL
), pairs AS (
    SELECT l.customer_id, c.sumit_customer_id, c.key, c.value, c.ord
    FROM crm_keys AS c
    JOIN crmsync_match_local AS l ON l.value = c.value AND l.key = c.key
    WHERE NOT EXISTS (SELECT 1 FROM crm_sync_match_exclusions AS x
                      WHERE x.customer_id = l.customer_id AND x.sumit_customer_id = c.sumit_customer_id)
), ranked AS (
    SELECT p.*, min(p.ord) OVER (PARTITION BY p.sumit_customer_id) AS crm_ord,
           min(p.ord) OVER (PARTITION BY p.customer_id) AS local_ord
    FROM pairs AS p
), crm_side AS (
    SELECT sumit_customer_id, min(key) AS key, min(value) AS value, array_agg(DISTINCT customer_id) AS candidates
    FROM ranked WHERE ord = crm_ord GROUP BY sumit_customer_id
), local_side AS (
    SELECT customer_id, min(key) AS key, min(value) AS value, array_agg(DISTINCT sumit_customer_id) AS candidates
    FROM ranked WHERE ord = local_ord GROUP BY customer_id
), links AS (
    SELECT l.customer_id, c.sumit_customer_id, c.key, c.value
    FROM crm_side AS c
    JOIN local_side AS l ON l.customer_id = c.candidates[1] AND l.candidates[1] = c.sumit_customer_id  -- a hash join
    WHERE cardinality(c.candidates) = 1 AND cardinality(l.candidates) = 1
), crm_held AS (  -- ambiguous, unless every candidate is linked to another customer now
    SELECT c.* FROM crm_side AS c
    WHERE NOT EXISTS (SELECT 1 FROM links AS k WHERE k.sumit_customer_id = c.sumit_customer_id)
      AND EXISTS (SELECT 1 FROM unnest(c.candidates) AS u(customer_id)
                  WHERE NOT EXISTS (SELECT 1 FROM links AS k WHERE k.customer_id = u.customer_id))
), local_held AS (
    SELECT l.* FROM local_side AS l
    WHERE NOT EXISTS (SELECT 1 FROM links AS k WHERE k.customer_id = l.customer_id)
      AND EXISTS (SELECT 1 FROM unnest(l.candidates) AS u(sumit_customer_id)
                  WHERE NOT EXISTS (SELECT 1 FROM links AS k WHERE k.sumit_customer_id = u.sumit_customer_id))
), found AS (
    INSERT INTO crmsync_match_found (kind, customer_id, sumit_customer_id, key, value, candidates)
    SELECT 'link', customer_id, sumit_customer_id, key, value, NULL FROM links
    UNION ALL
    SELECT 'hold_crm', NULL, sumit_customer_id, key, value, to_jsonb(candidates) FROM crm_held
    UNION ALL
    SELECT 'hold_local', customer_id, NULL, key, value, to_jsonb(candidates) FROM local_held
    UNION ALL  -- set aside, yet no candidate left: every pair excluded by a person, or linked to another now
    SELECT 'new', NULL, c.sumit_customer_id, NULL, NULL, NULL
    FROM crmsync_match_crm AS c
    WHERE NOT EXISTS (SELECT 1 FROM links AS k WHERE k.sumit_customer_id = c.sumit_customer_id)
      AND NOT EXISTS (SELECT 1 FROM crm_held AS h WHERE h.sumit_customer_id = c.sumit_customer_id)
    RETURNING kind
)
SELECT kind, count(*) FROM found GROUP BY kind
