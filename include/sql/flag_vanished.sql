-- After a complete pull: customers linked to a CRM id the listing no longer has are flagged
-- (never deleted, never pushed back automatically); flagged ones that are back are unflagged.
-- Returns how many were newly flagged.
WITH unflagged AS (
    UPDATE sumit_customers c SET metadata = c.metadata - 'crm_missing_since'
    WHERE c.metadata ? 'crm_missing_since'
      AND EXISTS (SELECT 1 FROM crmsync_seen s WHERE s.sumit_customer_id = c.sumit_customer_id)
    RETURNING c.id
), flagged AS (
    UPDATE sumit_customers c
    SET metadata = c.metadata || jsonb_build_object('crm_missing_since', %(pulled_at_text)s::text)
    WHERE c.sumit_customer_id IS NOT NULL
      AND NOT c.metadata ? 'crm_missing_since'
      AND NOT EXISTS (SELECT 1 FROM crmsync_seen s WHERE s.sumit_customer_id = c.sumit_customer_id)
    RETURNING c.id
)
SELECT (SELECT count(*) FROM flagged), (SELECT count(*) FROM unflagged)
