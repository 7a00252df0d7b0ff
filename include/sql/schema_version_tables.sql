-- Whether crm_sync_schema exists, and whether crmsync 1.0.0's tables do (it kept no version).
SELECT to_regclass('crm_sync_schema') IS NOT NULL, to_regclass('crm_sync_runs') IS NOT NULL
