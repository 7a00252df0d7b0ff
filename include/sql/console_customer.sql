-- One customer, all its columns and its sync state (the console's customer page).
SELECT c.id, c.sumit_customer_id, c.name, c.email, c.phone, c.company_name, c.tax_id, c.address, c.city,
       c.state, c.country, c.zip_code, c.metadata, c.created_at, c.updated_at, c.synced_at,
       s.push_error, s.open_conflicts, s.sync_state
FROM sumit_customers AS c
JOIN crm_sync_customer_states AS s ON s.id = c.id
WHERE c.id = %(id)s
