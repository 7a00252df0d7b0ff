-- Who holds crmsync's writer lock (see customers_lock_try.sql) in this database: its server
-- process id, application_name (crmsync sets it to the DAG run) and when it connected.
-- Every role may read another's application_name; backend_start needs the same role or
-- pg_read_all_stats, and is NULL otherwise.
SELECT l.pid, a.application_name, a.backend_start, now() - a.backend_start AS connected_for
FROM pg_locks AS l
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %(lock_class)s
  AND l.objid::bigint = %(lock_object)s
  AND l.objsubid = 2  -- the two-integer form of the key
ORDER BY l.pid
