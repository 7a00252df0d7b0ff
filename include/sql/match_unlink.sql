-- Unlink local customers from their CRM customers: the CRM id and what was agreed with the CRM
-- go (journaled as direction link); the row is then a local customer like any other. Returns
-- (local id, the CRM id it had).
WITH old AS (
    SELECT id, sumit_customer_id FROM sumit_customers
    WHERE id = ANY(%(ids)s::bigint[]) AND sumit_customer_id IS NOT NULL
    FOR UPDATE
), unlinked AS (
    UPDATE sumit_customers AS c SET sumit_customer_id = NULL, synced_fingerprint = NULL, crm_fingerprint = NULL,
                                    crm_custom_fingerprint = NULL, synced_at = NULL, create_sent_at = NULL,
                                    metadata = c.metadata - 'crm_missing_since'
    FROM old WHERE c.id = old.id
    RETURNING c.id
)
SELECT old.id, old.sumit_customer_id FROM old JOIN unlinked USING (id) ORDER BY old.id
