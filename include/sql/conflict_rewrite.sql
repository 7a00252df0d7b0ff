-- Write the side of a conflict a person chose into the customers' rows, in one statement. Run
-- by a session that journals as 'resolve', so the table's triggers journal it in the same
-- transaction. Each row (one per customer) holds ``chosen``: the chosen side's fields that
-- differ from the winner's (columns, and custom fields under "metadata", JSON null for an
-- absent one), and ``expected``: the winner's side, which the row must still hold, as the
-- conflict left it. The check is made here, on the row being written (re-read if a concurrent
-- edit committed meanwhile), so such an edit is never overwritten: that customer is not
-- returned. sumit_customer_id is checked, never written.
UPDATE sumit_customers AS c SET
    name         = CASE WHEN v.chosen ? 'name' THEN v.chosen ->> 'name' ELSE c.name END,
    email        = CASE WHEN v.chosen ? 'email' THEN v.chosen ->> 'email' ELSE c.email END,
    phone        = CASE WHEN v.chosen ? 'phone' THEN v.chosen ->> 'phone' ELSE c.phone END,
    company_name = CASE WHEN v.chosen ? 'company_name' THEN v.chosen ->> 'company_name' ELSE c.company_name END,
    tax_id       = CASE WHEN v.chosen ? 'tax_id' THEN v.chosen ->> 'tax_id' ELSE c.tax_id END,
    address      = CASE WHEN v.chosen ? 'address' THEN v.chosen ->> 'address' ELSE c.address END,
    city         = CASE WHEN v.chosen ? 'city' THEN v.chosen ->> 'city' ELSE c.city END,
    state        = CASE WHEN v.chosen ? 'state' THEN v.chosen ->> 'state' ELSE c.state END,
    country      = CASE WHEN v.chosen ? 'country' THEN v.chosen ->> 'country' ELSE c.country END,
    zip_code     = CASE WHEN v.chosen ? 'zip_code' THEN v.chosen ->> 'zip_code' ELSE c.zip_code END,
    -- custom fields: one chosen absent (JSON null) is removed, the others take the chosen value
    metadata     = (c.metadata - ARRAY(SELECT m.key FROM jsonb_each(coalesce(v.chosen -> 'metadata', '{}'::jsonb)) m
                                       WHERE m.value = 'null'::jsonb))
                   || coalesce((SELECT jsonb_object_agg(m.key, m.value)
                                FROM jsonb_each(coalesce(v.chosen -> 'metadata', '{}'::jsonb)) m
                                WHERE m.value <> 'null'::jsonb), '{}'::jsonb)
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(id bigint, sumit_customer_id text, expected jsonb, chosen jsonb)
WHERE c.id = v.id
  AND c.sumit_customer_id IS NOT DISTINCT FROM v.sumit_customer_id
  AND NOT EXISTS (SELECT 1 FROM jsonb_each(v.expected - 'metadata') f
                  WHERE crmsync_journal_values(c) -> f.key IS DISTINCT FROM f.value)
  AND NOT EXISTS (SELECT 1 FROM jsonb_each(coalesce(v.expected -> 'metadata', '{}'::jsonb)) m
                  WHERE coalesce(c.metadata -> m.key, 'null'::jsonb) IS DISTINCT FROM m.value)
RETURNING c.id
