-- One version the tables reached, once (a second upgrade changes nothing).
INSERT INTO crm_sync_schema (version, crmsync) VALUES (%(version)s, %(crmsync)s)
ON CONFLICT (version) DO NOTHING
