-- The search rows packed again for the console's search (include/sql/schema.sql); the customers packed.
SELECT crmsync_pack_customer_search() AS packed
