-- How many conflicts are open.
SELECT count(*) FROM crm_sync_conflicts WHERE resolution IS NULL
