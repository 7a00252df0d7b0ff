-- How many of the first probe_rows search rows (crm_sync_customer_search) in id order hold the
-- search: ConsoleQueries.customers_statement reads on in id order (console_customers_page.sql, switch
-- stream) when enough of them do, else reads every search row at once or asks the trigram indexes.
SELECT count(*) AS hits
FROM (SELECT doc, digits FROM crm_sync_customer_search ORDER BY id LIMIT %(probe_rows)s) AS s
WHERE CASE WHEN %(kind)s::text = 'number' THEN s.digits LIKE %(digits)s ELSE s.doc LIKE lower(%(pattern)s) END
