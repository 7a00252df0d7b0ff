-- Whether every optional trigram index of `crmsync search-index` (names: search_indexes.NAMES) is
-- there and valid: a search then reads them, else the narrow search rows of
-- crm_sync_customer_search (console_customers_search.sql, switch search_rows).
SELECT count(*) = cardinality(%(names)s::text[])
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass('sumit_customers') AND i.indisvalid AND c.relname = ANY(%(names)s::text[])
