-- SUMIT's triggers at a glance for the Runs page (NULLs when crm_inbox does not exist yet, as
-- before any crmsync run of this version): waiting, the oldest waiting one's age in seconds,
-- and those done in the last %(days)s days by outcome.
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       extract(epoch FROM now() - min(first_received_at) FILTER (WHERE status = 'pending'))::integer AS oldest_seconds,
       count(*) FILTER (WHERE status = 'applied' AND done_at > now() - make_interval(days => %(days)s)) AS applied,
       count(*) FILTER (WHERE status = 'ignored' AND done_at > now() - make_interval(days => %(days)s)) AS ignored,
       count(*) FILTER (WHERE status = 'held' AND done_at > now() - make_interval(days => %(days)s)) AS held,
       count(*) FILTER (WHERE status = 'rejected' AND done_at > now() - make_interval(days => %(days)s)) AS rejected,
       max(done_at) FILTER (WHERE status = 'applied') AS last_applied_at
FROM crm_inbox
