-- What crm_sumit_triggers subscribed (or, with %(subscribed)s false, unsubscribed: the URL's rows go).
WITH gone AS (
    DELETE FROM crm_sumit_subscriptions WHERE url_sha256 = %(url_sha256)s AND NOT %(subscribed)s
)
INSERT INTO crm_sumit_subscriptions (url_sha256, url_shown, folder, view, trigger_type, dag_run_id)
SELECT %(url_sha256)s, %(url_shown)s, %(folder)s, %(view)s, t, %(dag_run_id)s
FROM unnest(%(trigger_types)s::text[]) AS t
WHERE %(subscribed)s
ON CONFLICT (url_sha256, trigger_type) DO UPDATE
SET url_shown = EXCLUDED.url_shown, folder = EXCLUDED.folder, view = EXCLUDED.view,
    subscribed_at = now(), dag_run_id = EXCLUDED.dag_run_id
