-- A complete listing did not show these customers: their create never happened, send it again.
UPDATE sumit_customers SET create_sent_at = NULL WHERE id = ANY(%(ids)s::bigint[])
