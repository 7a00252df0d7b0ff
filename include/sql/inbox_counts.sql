-- The inbox at a glance: triggers by status, and the oldest pending one's age in seconds.
SELECT status, count(*), extract(epoch FROM now() - min(first_received_at) FILTER (WHERE status = 'pending'))
FROM crm_inbox GROUP BY status
