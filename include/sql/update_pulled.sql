-- Changes from one pulled page, in one statement (each parameter is a column array). Each
-- row says which parts to write (see merge.PullDecision). The last condition skips a row
-- edited locally since it was read: the edit is kept and the next run compares again.
UPDATE sumit_customers AS c SET
    name         = CASE WHEN v.replace_fields THEN v.name ELSE c.name END,
    email        = CASE WHEN v.replace_fields THEN v.email ELSE c.email END,
    phone        = CASE WHEN v.replace_fields THEN v.phone ELSE c.phone END,
    company_name = CASE WHEN v.replace_fields THEN v.company_name ELSE c.company_name END,
    tax_id       = CASE WHEN v.replace_fields THEN v.tax_id ELSE c.tax_id END,
    address      = CASE WHEN v.replace_fields THEN v.address ELSE c.address END,
    city         = CASE WHEN v.replace_fields THEN v.city ELSE c.city END,
    state        = CASE WHEN v.replace_fields THEN v.state ELSE c.state END,
    country      = CASE WHEN v.replace_fields THEN v.country ELSE c.country END,
    zip_code     = CASE WHEN v.replace_fields THEN v.zip_code ELSE c.zip_code END,
    metadata     = CASE WHEN v.merge_custom THEN c.metadata || v.custom::jsonb ELSE c.metadata END
                   || CASE WHEN v.merge_custom OR v.mark_agreed
                           THEN jsonb_build_object('last_synced_at', %(synced_at_text)s::text)
                           ELSE '{}'::jsonb END,
    synced_fingerprint     = CASE WHEN v.mark_agreed THEN v.fingerprint ELSE c.synced_fingerprint END,
    synced_at              = CASE WHEN v.mark_agreed THEN %(synced_at)s ELSE c.synced_at END,
    crm_fingerprint        = v.fingerprint,
    crm_custom_fingerprint = v.custom_fingerprint
FROM unnest(%(id)s::bigint[], %(replace_fields)s::boolean[], %(merge_custom)s::boolean[],
            %(mark_agreed)s::boolean[], %(name)s::text[], %(email)s::text[], %(phone)s::text[],
            %(company_name)s::text[], %(tax_id)s::text[], %(address)s::text[], %(city)s::text[],
            %(state)s::text[], %(country)s::text[], %(zip_code)s::text[], %(custom)s::text[],
            %(fingerprint)s::text[], %(custom_fingerprint)s::text[], %(expected_fingerprint)s::text[])
     AS v(id, replace_fields, merge_custom, mark_agreed, name, email, phone, company_name, tax_id,
          address, city, state, country, zip_code, custom, fingerprint, custom_fingerprint,
          expected_fingerprint)
WHERE c.id = v.id
  AND crmsync_local_fingerprint(c) = v.expected_fingerprint
RETURNING c.id
