-- Local customers by id, as a link needs them (locked: a person's decision is applied to the
-- row as read).
SELECT id, sumit_customer_id, name, email, phone, company_name, tax_id, address, city, state, country, zip_code,
       updated_at, crmsync_local_fingerprint(c)
FROM sumit_customers AS c
WHERE id = ANY(%(ids)s::bigint[])
FOR UPDATE
