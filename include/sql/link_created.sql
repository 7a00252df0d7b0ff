-- Link customers to what SUMIT created for them (found in its listing by the local id they
-- were created with). A CRM id another row already holds is left alone: the link is skipped.
UPDATE sumit_customers AS c
SET sumit_customer_id = v.sumit_customer_id, create_sent_at = NULL
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(id bigint, sumit_customer_id text)
WHERE c.id = v.id AND c.sumit_customer_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM sumit_customers o WHERE o.sumit_customer_id = v.sumit_customer_id)
RETURNING c.id
