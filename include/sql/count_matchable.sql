-- Local customers no CRM id is linked to that have a value of a match key in force: those a
-- pull's matching may link, and so may change (the mass-change guard counts them as existing).
SELECT count(*) FROM sumit_customers AS c
WHERE c.sumit_customer_id IS NULL
  AND ((%(tax_id)s AND crmsync_match_value('tax_id', c.tax_id) IS NOT NULL)
       OR (%(email)s AND crmsync_match_value('email', c.email) IS NOT NULL)
       OR (%(phone)s AND crmsync_match_value('phone', c.phone) IS NOT NULL))
