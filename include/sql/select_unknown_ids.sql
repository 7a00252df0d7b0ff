-- The requested local ids that no customer has.
SELECT requested.id
FROM unnest(%(ids)s::bigint[]) AS requested(id)
WHERE NOT EXISTS (SELECT 1 FROM sumit_customers c WHERE c.id = requested.id)
ORDER BY requested.id
