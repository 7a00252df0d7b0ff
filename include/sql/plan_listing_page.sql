-- The next page of a held pull's listing.
SELECT page, fetched, rows, rejected, unchanged FROM crm_sync_listing
WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND page > %(after)s
ORDER BY page
LIMIT 1
