-- Whether crmsync's tables exist yet, as this version makes them (a DAG's first task creates or
-- upgrades them).
SELECT to_regclass('crm_sync_customer_states') IS NOT NULL AND to_regclass('crm_sync_matches') IS NOT NULL
       AND to_regclass('crm_sync_customer_counts') IS NOT NULL AND to_regclass('crm_sync_customer_search') IS NOT NULL
       AND to_regclass('crm_sync_customer_search_pack') IS NOT NULL
