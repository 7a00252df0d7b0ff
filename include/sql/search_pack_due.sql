-- Whether the console's packed search rows (crm_sync_customer_search_packed, include/sql/schema.sql)
-- leave at least %(pack_after)s customers to the search rows: those added since the packing (the
-- customers counted in crm_sync_customer_counts, less those packed) and those written again since
-- (crm_sync_customer_search_recent, read no further than needed). A table never packed counts whole.
SELECT coalesce((SELECT sum(customers) FROM crm_sync_customer_counts), 0)
       - coalesce((SELECT packed_customers FROM crm_sync_customer_search_pack), 0)
       + (SELECT count(*) FROM (SELECT 1 FROM crm_sync_customer_search_recent LIMIT %(pack_after)s) AS r)
       >= %(pack_after)s AS due
