-- Customers a create was sent for whose answer never reached the database, with the
-- fingerprint of what was sent (a listing that does not show ExternalIdentifier is matched
-- on content).
SELECT id, crmsync_local_fingerprint(c) FROM sumit_customers AS c
WHERE create_sent_at IS NOT NULL AND sumit_customer_id IS NULL
ORDER BY id
