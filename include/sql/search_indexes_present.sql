-- The optional trigram indexes of `crmsync search-index` (names: crmsync.db.search_indexes.NAMES)
-- that exist, and whether each is valid (an interrupted build leaves an invalid one, which
-- answers nothing). The console's search reads them only when all are there and valid, else the
-- narrow search rows of crm_sync_customer_search (console_customers_search.sql, switch search_rows).
SELECT c.relname AS name, i.indisvalid AS valid
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass('sumit_customers') AND c.relname = ANY(%(names)s::text[])
