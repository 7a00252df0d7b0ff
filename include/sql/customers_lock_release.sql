-- Release crmsync's writer lock (see customers_lock_try.sql); false if this session did not hold it.
SELECT pg_advisory_unlock(%(lock_class)s::int4, %(lock_object)s::int4)
