-- Triggers done (applied, ignored, rejected) more than %(keep_days)s days ago are deleted.
DELETE FROM crm_inbox WHERE status <> 'pending' AND done_at < now() - make_interval(days => %(keep_days)s)
RETURNING id
