-- Whether crmsync's tables exist yet (a DAG's first task creates them).
SELECT to_regclass('crm_sync_customer_states') IS NOT NULL
