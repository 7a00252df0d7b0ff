-- The local state of the customers on one pulled page (by CRM id).
SELECT id, sumit_customer_id,
       name, email, phone, company_name, tax_id, address, city, state, country, zip_code,
       synced_fingerprint, crm_fingerprint, crm_custom_fingerprint, updated_at,
       crmsync_local_fingerprint(c) AS local_fingerprint
FROM sumit_customers AS c
WHERE sumit_customer_id = ANY(%(sumit_ids)s)
