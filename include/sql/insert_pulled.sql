-- New customers from one pulled page, in one statement. The page travels as one JSON array
-- of row objects (parsed by PostgreSQL in C; binding thirteen text arrays element by element
-- cost more than the insert itself). A row another writer linked to the same CRM id in the
-- meantime is left alone; the next pull compares it.
INSERT INTO sumit_customers AS c (
    sumit_customer_id, name, email, phone, company_name, tax_id, address, city, state, country,
    zip_code, metadata, synced_fingerprint, crm_fingerprint, crm_custom_fingerprint, synced_at)
SELECT v.sumit_customer_id, v.name, v.email, v.phone, v.company_name, v.tax_id, v.address, v.city,
       v.state, v.country, v.zip_code, v.metadata, v.fingerprint, v.fingerprint,
       v.custom_fingerprint, %(synced_at)s
FROM jsonb_to_recordset(%(rows)s::jsonb)
     AS v(sumit_customer_id text, name text, email text, phone text, company_name text, tax_id text,
          address text, city text, state text, country text, zip_code text, metadata jsonb,
          fingerprint text, custom_fingerprint text)
ON CONFLICT (sumit_customer_id) DO NOTHING
RETURNING c.sumit_customer_id
