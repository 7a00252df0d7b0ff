-- New customers from one pulled page, in one statement (each parameter is a column array).
-- A row another writer linked to the same CRM id in the meantime is left alone; the next
-- pull compares it.
INSERT INTO sumit_customers AS c (
    sumit_customer_id, name, email, phone, company_name, tax_id, address, city, state, country,
    zip_code, metadata, synced_fingerprint, crm_fingerprint, crm_custom_fingerprint, synced_at)
SELECT v.sumit_customer_id, v.name, v.email, v.phone, v.company_name, v.tax_id, v.address, v.city,
       v.state, v.country, v.zip_code, v.metadata::jsonb, v.fingerprint, v.fingerprint,
       v.custom_fingerprint, %(synced_at)s
FROM unnest(%(sumit_customer_id)s::text[], %(name)s::text[], %(email)s::text[], %(phone)s::text[],
            %(company_name)s::text[], %(tax_id)s::text[], %(address)s::text[], %(city)s::text[],
            %(state)s::text[], %(country)s::text[], %(zip_code)s::text[], %(metadata)s::text[],
            %(fingerprint)s::text[], %(custom_fingerprint)s::text[])
     AS v(sumit_customer_id, name, email, phone, company_name, tax_id, address, city, state,
          country, zip_code, metadata, fingerprint, custom_fingerprint)
ON CONFLICT (sumit_customer_id) DO NOTHING
RETURNING c.sumit_customer_id
