-- The conflicts one pulled page resolved (each parameter is a column array).
INSERT INTO crm_sync_conflicts (
    dag_id, dag_run_id, customer_id, sumit_customer_id, winner, policy, local_values, crm_values)
SELECT %(dag_id)s, %(dag_run_id)s, v.customer_id, v.sumit_customer_id, v.winner, %(policy)s,
       v.local_values::jsonb, v.crm_values::jsonb
FROM unnest(%(customer_id)s::bigint[], %(sumit_customer_id)s::text[], %(winner)s::text[],
            %(local_values)s::text[], %(crm_values)s::text[])
     AS v(customer_id, sumit_customer_id, winner, local_values, crm_values)
