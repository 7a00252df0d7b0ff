-- Records waiting for a person's match decision (crm_sync_matches), grouped by the value that
-- made them ambiguous: the held record and its candidates on the other side, each as
-- {customer_id | sumit_customer_id, name, email, tax_id, phone, city}.
SELECT m.id, m.side, m.customer_id, m.sumit_customer_id, m.match_key, m.match_value, m.candidates, m.held_at,
       m.dag_id, m.dag_run_id,
       CASE WHEN m.side = 'local'
            THEN jsonb_build_object('customer_id', c.id, 'name', c.name, 'email', c.email, 'tax_id', c.tax_id,
                                    'phone', c.phone, 'city', c.city)
            ELSE jsonb_build_object('sumit_customer_id', m.sumit_customer_id, 'name', m.record ->> 1,
                                    'email', m.record ->> 2, 'tax_id', m.record ->> 5, 'phone', m.record ->> 3,
                                    'city', m.record ->> 7) END AS held
FROM crm_sync_matches AS m
LEFT JOIN sumit_customers AS c ON m.side = 'local' AND c.id = m.customer_id
WHERE m.status = 'waiting'
ORDER BY m.match_key, m.match_value, m.side, m.id
LIMIT %(limit)s OFFSET %(offset)s
