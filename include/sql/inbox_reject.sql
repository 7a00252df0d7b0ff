-- A body the receiver refused (the right token, but no trigger it could read): kept with the
-- reason and the start of the body for a person, never applied.
INSERT INTO crm_inbox (action, status, reason, excerpt, done_at)
VALUES ('unreadable', 'rejected', %(reason)s, %(excerpt)s, now())
