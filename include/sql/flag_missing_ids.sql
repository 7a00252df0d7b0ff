-- Customers SUMIT's triggers say are gone (deleted, archived, or no longer readable): flagged
-- as missing like a complete pull flags the unlisted ones (never deleted, never pushed back).
-- Returns the local ids newly flagged.
UPDATE sumit_customers AS c
SET metadata = c.metadata || jsonb_build_object('crm_missing_since', %(at_text)s::text)
WHERE c.sumit_customer_id = ANY(%(ids)s::text[]) AND NOT c.metadata ? 'crm_missing_since'
RETURNING c.id
