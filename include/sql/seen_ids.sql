-- The CRM ids one pull has seen, in a table private to the pull's session. No index: filling
-- it costs a fifth as much without one, and flag_vanished.sql reads it once, by hash join,
-- after analyze_seen_ids.sql. An id may be in it twice (a page repeated), which changes nothing.
CREATE TEMP TABLE IF NOT EXISTS crmsync_seen (sumit_customer_id text) ON COMMIT PRESERVE ROWS;
TRUNCATE crmsync_seen;
-- The tables of one pull's matching (match_start.sql fills them; pull_page.sql reads them, so
-- they exist, empty, for every page merge): unlinked local customers' key values, the CRM
-- customers set aside for matching, and what match_find.sql found.
CREATE TEMP TABLE IF NOT EXISTS crmsync_match_local (customer_id bigint NOT NULL, key text NOT NULL,
                                                     value text NOT NULL) ON COMMIT PRESERVE ROWS;
CREATE INDEX IF NOT EXISTS crmsync_match_local_value ON crmsync_match_local (value);
CREATE TEMP TABLE IF NOT EXISTS crmsync_match_crm (sumit_customer_id text PRIMARY KEY, row jsonb NOT NULL)
    ON COMMIT PRESERVE ROWS;
CREATE TEMP TABLE IF NOT EXISTS crmsync_match_found (kind text NOT NULL, customer_id bigint, sumit_customer_id text,
                                                     key text, value text, candidates jsonb) ON COMMIT PRESERVE ROWS;
CREATE INDEX IF NOT EXISTS crmsync_match_found_link ON crmsync_match_found (customer_id) WHERE kind = 'link';
TRUNCATE crmsync_match_local, crmsync_match_crm, crmsync_match_found;
