-- Pairs (local id, CRM id) never to be matched automatically again: a person said they are
-- different customers (separate), or unlinked them (unlink).
INSERT INTO crm_sync_match_exclusions (customer_id, sumit_customer_id, reason, dag_id, dag_run_id)
SELECT v.customer_id, v.sumit_customer_id, %(reason)s, %(dag_id)s, %(dag_run_id)s
FROM unnest(%(customer_ids)s::bigint[], %(sumit_customer_ids)s::text[]) AS v(customer_id, sumit_customer_id)
ON CONFLICT (customer_id, sumit_customer_id) DO NOTHING
