-- A plan that waits for a person (again on a retry of the task that made it).
INSERT INTO crm_sync_plans (dag_id, dag_run_id, kind, status, reasons, plan, settings)
VALUES (%(dag_id)s, %(dag_run_id)s, %(kind)s, 'awaiting_approval', %(reasons)s, %(plan)s::jsonb, %(settings)s::jsonb)
ON CONFLICT (dag_id, dag_run_id, kind) DO UPDATE SET
    status = 'awaiting_approval', reasons = EXCLUDED.reasons, plan = EXCLUDED.plan, settings = EXCLUDED.settings,
    created_at = now(), decided_at = NULL
