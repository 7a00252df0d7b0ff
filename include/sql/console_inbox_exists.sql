-- Whether crm_inbox exists yet (created by this version's first run).
SELECT to_regclass('crm_inbox') IS NOT NULL
