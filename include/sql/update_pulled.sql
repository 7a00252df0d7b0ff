-- Changes from one pulled page, in one statement (the page is one JSON array of row objects,
-- as in pull_page.sql). Each row says which parts to write (see merge.PullDecision). The last condition skips a row
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
    metadata     = CASE WHEN v.merge_custom THEN c.metadata || v.custom ELSE c.metadata END
                   || CASE WHEN v.merge_custom OR v.mark_agreed
                           THEN jsonb_build_object('last_synced_at', %(synced_at_text)s::text)
                           ELSE '{}'::jsonb END,
    synced_fingerprint     = CASE WHEN v.mark_agreed THEN v.agreed_fingerprint ELSE c.synced_fingerprint END,
    synced_at              = CASE WHEN v.mark_agreed THEN %(synced_at)s ELSE c.synced_at END,
    crm_fingerprint        = v.fingerprint,
    crm_custom_fingerprint = v.custom_fingerprint,
    crm_record_hash        = v.record_hash
FROM jsonb_to_recordset(%(rows)s::jsonb)
     AS v(id bigint, replace_fields boolean, merge_custom boolean, mark_agreed boolean, name text,
          email text, phone text, company_name text, tax_id text, address text, city text,
          state text, country text, zip_code text, custom jsonb, fingerprint text,
          agreed_fingerprint text, custom_fingerprint text, expected_fingerprint text,
          record_hash uuid)
WHERE c.id = v.id
  AND crmsync_local_fingerprint(c) = v.expected_fingerprint
RETURNING c.id
