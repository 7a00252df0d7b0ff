-- How many records wait for a person's match decision.
SELECT count(*) FROM crm_sync_matches WHERE status = 'waiting'
