-- Drop the listing a held pull kept (applied, rejected, or a retry of the task starting over).
DELETE FROM crm_sync_listing WHERE dag_id = %(dag_id)s AND dag_run_id = %(dag_run_id)s
