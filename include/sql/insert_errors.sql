-- Records that could not be synced (each parameter is a column array).
INSERT INTO crm_sync_errors (dag_id, dag_run_id, phase, customer_id, sumit_customer_id, error, record)
SELECT %(dag_id)s, %(dag_run_id)s, v.phase, v.customer_id, v.sumit_customer_id, v.error, v.record::jsonb
FROM unnest(%(phase)s::text[], %(customer_id)s::bigint[], %(sumit_customer_id)s::text[],
            %(error)s::text[], %(record)s::text[])
     AS v(phase, customer_id, sumit_customer_id, error, record)
