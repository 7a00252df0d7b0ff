-- crmsync's writer lock: one session-level advisory lock (key: 'crms', 1) that every task
-- writing the customers tables holds for its whole work, so two runs (a manual push during
-- the scheduled sync) never interleave writes to the same rows. Session-level, so it outlives
-- the per-page commits; PostgreSQL releases it when the session ends, including when the
-- worker is killed or the server restarts.
--
-- The same statement names the session (application_name: which DAG run holds the lock, for
-- a waiting writer and for pg_stat_activity) and turns on TCP keepalives, so the lock of a
-- worker whose host vanished is released within about two minutes instead of hours.
SELECT set_config('application_name', %(application_name)s, false),
       set_config('tcp_keepalives_idle', '60', false),
       set_config('tcp_keepalives_interval', '10', false),
       set_config('tcp_keepalives_count', '6', false),
       pg_try_advisory_lock(%(lock_class)s::int4, %(lock_object)s::int4)
