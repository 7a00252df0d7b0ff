-- Undo one run's local changes (its journal rows of direction pull, revert or resolve), in one
-- statement: classify every customer the run changed or created, restore those nobody changed
-- since, and return each customer's outcome. Run by a session that journals as 'revert', so
-- the table's triggers journal the restore in the same transaction.
--
-- A row's values match a journal entry (``before`` or ``after``) when every field the entry
-- holds has that value now: columns as they are, custom fields under "metadata" with JSON
-- null for an absent key. The link to the CRM (sumit_customer_id) is never restored: it is
-- identity, not data, and unlinking would make the next push create a duplicate.
--
-- Outcomes: created (the run inserted it, crm_sync_created: kept, crmsync never deletes),
-- link_only (only the CRM link changed: kept), deleted (the row is gone), already_restored
-- (its values equal ``before``), changed_since (a value differs from ``after``, or a later
-- run's pull or revert touched it: left alone), restored. The UPDATE checks ``after`` again on
-- the row it writes, so an edit committed after the plan was read is never overwritten: that
-- customer comes back changed_since. Each customer also says whether its restore changes a
-- column: what a push sends (custom fields and the vanished flag never travel to SUMIT).
WITH created AS (
    SELECT DISTINCT u.customer_id
    FROM crm_sync_created b CROSS JOIN LATERAL unnest(b.customer_ids) AS u(customer_id)
    WHERE b.dag_id = %(dag_id)s AND b.dag_run_id = %(target)s AND b.direction IN ('pull', 'revert', 'resolve')
), changed AS (
    SELECT DISTINCT ON (j.customer_id) j.id, j.customer_id, j.before, j.after
    FROM crm_sync_changes j
    WHERE j.dag_id = %(dag_id)s AND j.dag_run_id = %(target)s AND j.direction IN ('pull', 'revert', 'resolve')
    ORDER BY j.customer_id, j.id DESC
), entry AS (
    -- a customer the run created and then changed is the run's creation: kept as it is
    SELECT ch.id, ch.customer_id, ch.before, ch.after FROM changed ch
    WHERE NOT EXISTS (SELECT 1 FROM created cr WHERE cr.customer_id = ch.customer_id)
    UNION ALL
    SELECT NULL, cr.customer_id, NULL, NULL FROM created cr
), plan AS (
    SELECT e.customer_id, e.before, e.after,
           CASE
               WHEN e.before IS NULL THEN 'created'
               WHEN c.id IS NULL THEN 'deleted'
               WHEN e.before - 'sumit_customer_id' = '{}'::jsonb THEN 'link_only'
               WHEN NOT EXISTS (
                        SELECT 1 FROM jsonb_each(e.before - 'metadata' - 'sumit_customer_id') f
                        WHERE now_values.v -> f.key IS DISTINCT FROM f.value)
                    AND NOT EXISTS (
                        SELECT 1 FROM jsonb_each(coalesce(e.before -> 'metadata', '{}'::jsonb)) m
                        WHERE coalesce(now_values.v -> 'metadata' -> m.key, 'null'::jsonb) IS DISTINCT FROM m.value)
                   THEN 'already_restored'
               WHEN EXISTS (
                        SELECT 1 FROM jsonb_each(e.after - 'metadata') f
                        WHERE now_values.v -> f.key IS DISTINCT FROM f.value)
                    OR EXISTS (
                        SELECT 1 FROM jsonb_each(coalesce(e.after -> 'metadata', '{}'::jsonb)) m
                        WHERE coalesce(now_values.v -> 'metadata' -> m.key, 'null'::jsonb) IS DISTINCT FROM m.value)
                    OR EXISTS (
                        SELECT 1 FROM crm_sync_changes later
                        WHERE later.customer_id = e.customer_id AND later.id > e.id
                          AND later.direction IN ('pull', 'revert', 'resolve')
                          AND (later.dag_id, later.dag_run_id) <> (%(dag_id)s, %(target)s))
                   THEN 'changed_since'
               ELSE 'restore'
           END AS outcome
    FROM entry e
    LEFT JOIN sumit_customers c ON c.id = e.customer_id
    CROSS JOIN LATERAL (SELECT CASE WHEN c.id IS NULL THEN NULL ELSE crmsync_journal_values(c) END AS v) AS now_values
), restored AS (
    UPDATE sumit_customers AS c SET
        name         = CASE WHEN p.before ? 'name' THEN p.before ->> 'name' ELSE c.name END,
        email        = CASE WHEN p.before ? 'email' THEN p.before ->> 'email' ELSE c.email END,
        phone        = CASE WHEN p.before ? 'phone' THEN p.before ->> 'phone' ELSE c.phone END,
        company_name = CASE WHEN p.before ? 'company_name' THEN p.before ->> 'company_name' ELSE c.company_name END,
        tax_id       = CASE WHEN p.before ? 'tax_id' THEN p.before ->> 'tax_id' ELSE c.tax_id END,
        address      = CASE WHEN p.before ? 'address' THEN p.before ->> 'address' ELSE c.address END,
        city         = CASE WHEN p.before ? 'city' THEN p.before ->> 'city' ELSE c.city END,
        state        = CASE WHEN p.before ? 'state' THEN p.before ->> 'state' ELSE c.state END,
        country      = CASE WHEN p.before ? 'country' THEN p.before ->> 'country' ELSE c.country END,
        zip_code     = CASE WHEN p.before ? 'zip_code' THEN p.before ->> 'zip_code' ELSE c.zip_code END,
        -- custom fields: a key that was absent (JSON null) is removed, the others take their old value
        metadata     = (c.metadata - ARRAY(SELECT m.key FROM jsonb_each(coalesce(p.before -> 'metadata', '{}'::jsonb)) m
                                           WHERE m.value = 'null'::jsonb))
                       || coalesce((SELECT jsonb_object_agg(m.key, m.value)
                                    FROM jsonb_each(coalesce(p.before -> 'metadata', '{}'::jsonb)) m
                                    WHERE m.value <> 'null'::jsonb), '{}'::jsonb)
    FROM plan AS p
    WHERE p.outcome = 'restore' AND c.id = p.customer_id
      -- again on the row being written (re-read if a concurrent edit committed meanwhile)
      AND NOT EXISTS (SELECT 1 FROM jsonb_each(p.after - 'metadata') f
                      WHERE crmsync_journal_values(c) -> f.key IS DISTINCT FROM f.value)
      AND NOT EXISTS (SELECT 1 FROM jsonb_each(coalesce(p.after -> 'metadata', '{}'::jsonb)) m
                      WHERE coalesce(c.metadata -> m.key, 'null'::jsonb) IS DISTINCT FROM m.value)
    RETURNING c.id
)
SELECT p.customer_id,
       CASE WHEN p.outcome = 'restore' THEN CASE WHEN r.id IS NULL THEN 'changed_since' ELSE 'restored' END
            ELSE p.outcome END AS outcome,
       -- whether the restore changes a column (what a push sends; custom fields never travel)
       coalesce(p.before - 'metadata' - 'sumit_customer_id' <> '{}'::jsonb, false) AS changes_columns
FROM plan AS p
LEFT JOIN restored AS r ON r.id = p.customer_id
ORDER BY p.customer_id
