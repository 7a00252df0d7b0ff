-- The records this pull's matching held for a person (crmsync_match_found, kind hold_*), in
-- crm_sync_matches: a record already waiting gets the new key, value and candidates; a new one
-- is added; a waiting record that is no longer ambiguous is cleared. Candidates carry what a
-- person needs to decide (ids, names, e-mails, tax ids, phones); a held CRM customer's row as
-- pulled is kept in ``record``. Returns the number of records waiting.
WITH held AS (
    SELECT 'crm' AS side, NULL::bigint AS customer_id, f.sumit_customer_id, f.key, f.value, m.row AS record,
           (SELECT jsonb_agg(jsonb_build_object('customer_id', c.id, 'name', c.name, 'email', c.email,
                                                'tax_id', c.tax_id, 'phone', c.phone, 'city', c.city) ORDER BY c.id)
            FROM sumit_customers AS c
            WHERE c.id IN (SELECT jsonb_array_elements_text(f.candidates)::bigint)) AS candidates
    FROM crmsync_match_found AS f JOIN crmsync_match_crm AS m ON m.sumit_customer_id = f.sumit_customer_id
    WHERE f.kind = 'hold_crm'
    UNION ALL
    SELECT 'local', f.customer_id, NULL, f.key, f.value, NULL,
           (SELECT jsonb_agg(jsonb_build_object('sumit_customer_id', m.sumit_customer_id, 'name', m.row ->> 1,
                                                'email', m.row ->> 2, 'tax_id', m.row ->> 5, 'phone', m.row ->> 3,
                                                'city', m.row ->> 7) ORDER BY m.sumit_customer_id)
            FROM crmsync_match_crm AS m
            WHERE m.sumit_customer_id IN (SELECT jsonb_array_elements_text(f.candidates)))
    FROM crmsync_match_found AS f
    WHERE f.kind = 'hold_local'
), cleared AS (
    UPDATE crm_sync_matches AS w SET status = 'cleared', decided_at = now(), decided_by = %(dag_run_id)s
    WHERE w.status = 'waiting'
      AND NOT EXISTS (SELECT 1 FROM held AS h WHERE h.side = w.side
                      AND (h.customer_id = w.customer_id OR h.sumit_customer_id = w.sumit_customer_id))
    RETURNING 1
), renewed AS (
    UPDATE crm_sync_matches AS w SET match_key = h.key, match_value = h.value, candidates = h.candidates,
                                     record = h.record, dag_id = %(dag_id)s, dag_run_id = %(dag_run_id)s
    FROM held AS h
    WHERE w.status = 'waiting' AND h.side = w.side
      AND (h.customer_id = w.customer_id OR h.sumit_customer_id = w.sumit_customer_id)
    RETURNING 1
), added AS (
    INSERT INTO crm_sync_matches (side, customer_id, sumit_customer_id, match_key, match_value, candidates, record,
                                  dag_id, dag_run_id)
    SELECT h.side, h.customer_id, h.sumit_customer_id, h.key, h.value, coalesce(h.candidates, '[]'::jsonb), h.record,
           %(dag_id)s, %(dag_run_id)s
    FROM held AS h
    WHERE NOT EXISTS (SELECT 1 FROM crm_sync_matches AS w WHERE w.status = 'waiting' AND w.side = h.side
                      AND (h.customer_id = w.customer_id OR h.sumit_customer_id = w.sumit_customer_id))
    RETURNING 1
)
SELECT (SELECT count(*) FROM held), (SELECT count(*) FROM cleared), (SELECT count(*) FROM added)
