INSERT INTO crmsync_seen SELECT DISTINCT unnest(%(ids)s::text[]) ON CONFLICT DO NOTHING
