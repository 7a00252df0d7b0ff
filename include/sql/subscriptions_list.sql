-- Every subscription crm_sumit_triggers made, newest first.
SELECT url_shown, url_sha256, folder, view, trigger_type, subscribed_at, dag_run_id
FROM crm_sumit_subscriptions ORDER BY subscribed_at DESC, trigger_type
