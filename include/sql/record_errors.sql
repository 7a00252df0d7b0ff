-- Records that could not be synced, as one statement (each parameter is a column array).
-- A record already pending counts one more attempt; at the cap it is given up. Returns the
-- records given up by this statement.
INSERT INTO crm_sync_errors AS e (
    dag_id, dag_run_id, phase, record_key, customer_id, sumit_customer_id, error, record,
    fingerprint, status)
SELECT %(dag_id)s, %(dag_run_id)s, v.phase, v.record_key, v.customer_id, v.sumit_customer_id,
       v.error, v.record::jsonb, v.fingerprint,
       CASE WHEN v.retryable THEN (CASE WHEN %(max_attempts)s <= 1 THEN 'gave_up' ELSE 'pending' END)
            ELSE 'ignored' END
FROM unnest(%(phase)s::text[], %(record_key)s::text[], %(customer_id)s::bigint[],
            %(sumit_customer_id)s::text[], %(error)s::text[], %(record)s::text[],
            %(fingerprint)s::text[], %(retryable)s::boolean[])
     AS v(phase, record_key, customer_id, sumit_customer_id, error, record, fingerprint, retryable)
ON CONFLICT (phase, record_key) WHERE status = 'pending' DO UPDATE SET
    attempts       = e.attempts + 1,
    status         = CASE WHEN e.attempts + 1 >= %(max_attempts)s THEN 'gave_up' ELSE 'pending' END,
    error          = EXCLUDED.error,
    record         = coalesce(EXCLUDED.record, e.record),
    fingerprint    = EXCLUDED.fingerprint,
    dag_id         = EXCLUDED.dag_id,
    dag_run_id     = EXCLUDED.dag_run_id,
    last_failed_at = now()
RETURNING e.phase, e.record_key, e.attempts, e.status
