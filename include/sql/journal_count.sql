-- How many customers a run changed in one direction: its rows in the change journal, and the
-- customers it created.
SELECT (SELECT count(*) FROM crm_sync_changes
        WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND direction = %(direction)s)
     + (SELECT coalesce(sum(cardinality(customer_ids)), 0) FROM crm_sync_created
        WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s AND direction = %(direction)s)
