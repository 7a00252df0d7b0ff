-- Customers a create was sent for whose answer never reached the database.
SELECT id FROM sumit_customers
WHERE create_sent_at IS NOT NULL AND sumit_customer_id IS NULL
ORDER BY id
