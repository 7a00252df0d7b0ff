-- Link local customers to CRM customers (crmsync.core.matching.plan_link decided each), in one
-- statement: the CRM id, the fields once blanks are filled and conflicts decided, the CRM's
-- custom fields merged into metadata, and the fingerprints (synced_fingerprint is the CRM
-- copy's while the CRM still lacks a local value: the next push sends it, as an update). A row
-- linked meanwhile, or edited since it was read, is left alone. Journaled as direction link.
UPDATE sumit_customers AS c SET
    sumit_customer_id      = v.sumit_customer_id,
    name = v.name, email = v.email, phone = v.phone, company_name = v.company_name, tax_id = v.tax_id,
    address = v.address, city = v.city, state = v.state, country = v.country, zip_code = v.zip_code,
    metadata               = c.metadata || coalesce(v.custom, '{}'::jsonb)
                             || jsonb_build_object('last_synced_at', %(synced_at_text)s::text),
    synced_fingerprint     = v.synced_fingerprint,
    crm_fingerprint        = v.crm_fingerprint,
    crm_custom_fingerprint = v.crm_custom_fingerprint,
    synced_at              = %(synced_at)s
FROM jsonb_to_recordset(%(rows)s::jsonb)
     AS v(id bigint, sumit_customer_id text, name text, email text, phone text, company_name text, tax_id text,
          address text, city text, state text, country text, zip_code text, custom jsonb,
          synced_fingerprint text, crm_fingerprint text, crm_custom_fingerprint text, expected_fingerprint text)
WHERE c.id = v.id
  AND c.sumit_customer_id IS NULL
  AND (v.expected_fingerprint IS NULL OR crmsync_local_fingerprint(c) = v.expected_fingerprint)
  AND NOT EXISTS (SELECT 1 FROM sumit_customers AS o WHERE o.sumit_customer_id = v.sumit_customer_id)
RETURNING c.id
