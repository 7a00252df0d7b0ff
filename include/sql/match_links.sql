-- The pairs match_find.sql linked, with what plan_link needs: the local row as it is now (and
-- its fingerprint, so a racing edit is not overwritten) and the CRM customer as the pull read it.
-- Keyset paging by local id, on both sides of the join: the customers are read from the chunk's
-- first id on (a merge join read them from the table's first row for every chunk: 1.0-1.2 s
-- for the 25 chunks of 50,000 pairs, 0.4 s now).
SELECT f.customer_id, f.sumit_customer_id, f.key,
       c.name, c.email, c.phone, c.company_name, c.tax_id, c.address, c.city, c.state, c.country, c.zip_code,
       c.updated_at, crmsync_local_fingerprint(c) AS local_fingerprint, m.row
FROM crmsync_match_found AS f
JOIN sumit_customers AS c ON c.id = f.customer_id
JOIN crmsync_match_crm AS m ON m.sumit_customer_id = f.sumit_customer_id
WHERE f.kind = 'link' AND f.customer_id > %(after_id)s AND c.id > %(after_id)s
ORDER BY f.customer_id
LIMIT %(limit)s
