-- Record what SUMIT accepted (%(rows)s: per customer [id, CRM id, fingerprint, values sent]), and journal it: one
-- crm_sync_changes row per customer (direction push) with the values sent, in the same
-- statement. The fingerprint is the one read before the push, so an edit made while the push
-- was in flight still differs from it and is pushed next time.
WITH v AS (
    SELECT (r->>0)::bigint AS id, r->>1 AS sumit_customer_id, r->>2 AS fingerprint, r->3 AS sent
    FROM jsonb_array_elements(%(rows)s::jsonb) AS r
), updated AS (
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
    FROM v
    WHERE c.id = v.id
    RETURNING c.id, c.sumit_customer_id
), journal AS (
    INSERT INTO crm_sync_changes AS j (dag_id, dag_run_id, direction, customer_id, sumit_customer_id, before, after)
    SELECT %(dag_id)s, %(dag_run_id)s, 'push', u.id, u.sumit_customer_id, NULL, v.sent
    FROM updated AS u JOIN v ON v.id = u.id
    ON CONFLICT (dag_id, dag_run_id, direction, customer_id) DO UPDATE
        SET after = crmsync_journal_merge(j.after, EXCLUDED.after), changed_at = EXCLUDED.changed_at
)
SELECT id FROM updated
