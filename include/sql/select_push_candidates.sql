-- The next chunk of customers to push, in id order (keyset paging: no long-lived cursor).
-- only_changed keeps the rows edited since their last sync, or never synced, except
-- customers the CRM no longer lists (never pushed back automatically) and customers given
-- up on after too many failed attempts, until they change again. A customer waiting for a
-- person's match decision is never created.
SELECT id, sumit_customer_id,
       name, email, phone, company_name, tax_id, address, city, state, country, zip_code,
       crmsync_local_fingerprint(c) AS local_fingerprint
FROM sumit_customers AS c
WHERE id > %(after_id)s
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
  -- never a create of a customer waiting for a person's match decision (it may be in SUMIT already)
  AND NOT (c.sumit_customer_id IS NULL
           AND EXISTS (SELECT 1 FROM crm_sync_matches AS m
                       WHERE m.customer_id = c.id AND m.status = 'waiting' AND m.side = 'local'))
  AND (NOT %(only_changed)s OR (
        synced_fingerprint IS DISTINCT FROM crmsync_local_fingerprint(c)
        AND NOT c.metadata ? 'crm_missing_since'
        AND NOT EXISTS (SELECT 1 FROM crm_sync_errors e
                        WHERE e.phase = 'push' AND e.status = 'gave_up' AND e.customer_id = c.id
                          AND e.fingerprint = crmsync_local_fingerprint(c))))
ORDER BY id
LIMIT %(limit)s
