-- The highest schema version recorded (crmsync.db.schema_version).
SELECT max(version) FROM crm_sync_schema
