-- Customers whose create is about to be sent, committed before it is: if the worker dies
-- before SUMIT's answer is stored, the next run looks them up instead of creating them again.
UPDATE sumit_customers
SET create_sent_at = now()
WHERE id = ANY(%(ids)s::bigint[]) AND sumit_customer_id IS NULL
