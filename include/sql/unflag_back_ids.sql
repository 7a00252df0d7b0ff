-- Customers flagged as missing that SUMIT shows again (a trigger, read fresh): unflagged.
UPDATE sumit_customers AS c SET metadata = c.metadata - 'crm_missing_since'
WHERE c.sumit_customer_id = ANY(%(ids)s::text[]) AND c.metadata ? 'crm_missing_since'
RETURNING c.id
