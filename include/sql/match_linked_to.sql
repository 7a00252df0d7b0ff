-- The local customers linked to these CRM ids.
SELECT sumit_customer_id, id FROM sumit_customers WHERE sumit_customer_id = ANY(%(ids)s::text[])
