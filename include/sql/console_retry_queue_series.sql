-- The retry queue's size (records pending or given up) just after each run of the last days: a
-- record is in it from its first failure until it was resolved or ignored in the console
-- (resolved_at); a record refused for good at once (ignored, no resolved_at) never was.
SELECT r.finished_at,
       (SELECT count(*) FROM crm_sync_errors AS e
        WHERE e.created_at <= r.finished_at
          AND (e.resolved_at IS NULL OR e.resolved_at > r.finished_at)
          AND NOT (e.status = 'ignored' AND e.resolved_at IS NULL)) AS queued
FROM crm_sync_runs AS r
WHERE r.finished_at IS NOT NULL AND r.started_at > now() - make_interval(days => %(days)s)
ORDER BY r.finished_at
LIMIT %(limit)s
