-- The CRM ids one pull has seen, in a table private to the pull's session. No index: filling
-- it costs a fifth as much without one, and flag_vanished.sql reads it once, by hash join,
-- after analyze_seen_ids.sql. An id may be in it twice (a page repeated), which changes nothing.
CREATE TEMP TABLE IF NOT EXISTS crmsync_seen (sumit_customer_id text) ON COMMIT PRESERVE ROWS;
TRUNCATE crmsync_seen;
