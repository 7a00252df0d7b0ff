-- Local customers (of %(ids)s, or all) waiting for a person's match decision: the push leaves them
-- uncreated until then.
SELECT count(*) FROM crm_sync_matches
WHERE status = 'waiting' AND side = 'local' AND (%(ids)s::bigint[] IS NULL OR customer_id = ANY(%(ids)s::bigint[]))
