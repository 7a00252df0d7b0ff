-- Which DAGs have a run with this dag_run_id: by crm_sync_runs (its report ran) or by the
-- change journal (crm_sync_changes: the customers it changed; crm_sync_created: those it
-- created), with what each holds. Both journal tables are indexed by (dag_id, dag_run_id, ...),
-- so their few DAG ids are read first (a loose index scan), then each is probed: no scan of a
-- whole journal, however long it grows.
WITH RECURSIVE changes_dags AS (
    (SELECT dag_id FROM crm_sync_changes ORDER BY dag_id LIMIT 1)
    UNION ALL
    SELECT (SELECT j.dag_id FROM crm_sync_changes j WHERE j.dag_id > d.dag_id ORDER BY j.dag_id LIMIT 1)
    FROM changes_dags d WHERE d.dag_id IS NOT NULL
), created_dags AS (
    (SELECT dag_id FROM crm_sync_created ORDER BY dag_id LIMIT 1)
    UNION ALL
    SELECT (SELECT b.dag_id FROM crm_sync_created b WHERE b.dag_id > d.dag_id ORDER BY b.dag_id LIMIT 1)
    FROM created_dags d WHERE d.dag_id IS NOT NULL
), dags AS (
    SELECT dag_id FROM changes_dags WHERE dag_id IS NOT NULL
    UNION
    SELECT dag_id FROM created_dags WHERE dag_id IS NOT NULL
    UNION
    SELECT dag_id FROM crm_sync_runs WHERE dag_run_id = %(target)s
), found AS (
    SELECT d.dag_id,
           (SELECT r.operation FROM crm_sync_runs r WHERE r.dag_id = d.dag_id AND r.dag_run_id = %(target)s) AS operation,
           (SELECT count(*) FROM crm_sync_changes j WHERE j.dag_id = d.dag_id AND j.dag_run_id = %(target)s
                                                      AND j.direction IN ('pull', 'revert', 'resolve')) AS revertible,
           (SELECT count(*) FROM crm_sync_changes j WHERE j.dag_id = d.dag_id AND j.dag_run_id = %(target)s) AS journaled,
           (SELECT coalesce(sum(cardinality(b.customer_ids)), 0) FROM crm_sync_created b
            WHERE b.dag_id = d.dag_id AND b.dag_run_id = %(target)s) AS created
    FROM dags d
    WHERE NOT (d.dag_id = %(own_dag_id)s AND %(target)s = %(own_dag_run_id)s)  -- never this revert run itself
)
SELECT dag_id, operation, revertible, journaled, created
FROM found
WHERE operation IS NOT NULL OR journaled > 0 OR created > 0
ORDER BY dag_id
