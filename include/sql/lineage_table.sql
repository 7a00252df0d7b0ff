-- The customers table as OpenLineage describes it (crmsync.airflow_side.lineage): its database,
-- its columns (name, type) in order, and its row count. Only when the table exists.
SELECT current_database(),
       (SELECT json_agg(json_build_array(column_name, data_type) ORDER BY ordinal_position)
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = 'sumit_customers'),
       (SELECT count(*) FROM sumit_customers)
