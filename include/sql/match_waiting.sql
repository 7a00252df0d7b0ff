-- Records waiting for a person's match decision: by crm_sync_matches id, by local id, or by CRM
-- id (a NULL list matches nothing of that kind).
SELECT id, side, customer_id, sumit_customer_id, match_key, match_value, candidates, record
FROM crm_sync_matches
WHERE status = 'waiting'
  AND (id = ANY(coalesce(%(ids)s::bigint[], '{}'))
       OR customer_id = ANY(coalesce(%(customer_ids)s::bigint[], '{}'))
       OR sumit_customer_id = ANY(coalesce(%(sumit_customer_ids)s::text[], '{}')))
ORDER BY id
