-- Record what SUMIT accepted (each parameter is a column array). The fingerprint is the one
-- read before the push, so an edit made while the push was in flight still differs from it
-- and is pushed next time.
UPDATE sumit_customers AS c SET
    sumit_customer_id  = COALESCE(v.sumit_customer_id, c.sumit_customer_id),
    synced_fingerprint = v.fingerprint,
    crm_fingerprint    = v.fingerprint,
    -- A customer SUMIT just created has no custom fields there yet: remember that, or the
    -- next pull would count every new customer as updated.
    crm_custom_fingerprint = COALESCE(c.crm_custom_fingerprint, %(empty_custom_fingerprint)s),
    synced_at          = %(synced_at)s,
    create_sent_at     = NULL,
    metadata           = c.metadata || jsonb_build_object('last_synced_at', %(synced_at_text)s::text)
FROM unnest(%(id)s::bigint[], %(sumit_customer_id)s::text[], %(fingerprint)s::text[])
     AS v(id, sumit_customer_id, fingerprint)
WHERE c.id = v.id
RETURNING c.id
