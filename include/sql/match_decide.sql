-- Close waiting records with a person's decision (linked, separate), by this run.
UPDATE crm_sync_matches SET status = %(status)s, decided_at = now(), decided_by = %(dag_run_id)s
WHERE id = ANY(%(ids)s::bigint[]) AND status = 'waiting'
