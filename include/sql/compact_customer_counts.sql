-- crm_sync_customer_counts' rows folded into one (include/sql/schema.sql): each pull runs it.
SELECT crmsync_compact_customer_counts()
