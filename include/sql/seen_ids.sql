-- The CRM ids one pull has seen, in a table private to the pull's session.
CREATE TEMP TABLE IF NOT EXISTS crmsync_seen (sumit_customer_id text PRIMARY KEY) ON COMMIT PRESERVE ROWS;
TRUNCATE crmsync_seen;
