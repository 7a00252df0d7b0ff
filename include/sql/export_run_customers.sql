-- The customers one run changed (its journal rows and its creations), as they are now: what the
-- example downstream DAG crm_export_changed_customers writes out.
SELECT c.id, c.sumit_customer_id, c.name, c.email, c.phone, c.company_name, c.tax_id, c.address, c.city,
       c.state, c.country, c.zip_code, c.metadata ->> 'crm_missing_since' AS crm_missing_since, c.updated_at
FROM sumit_customers AS c
WHERE c.id IN (SELECT customer_id FROM crm_sync_history WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s)
ORDER BY c.id
