-- crmsync 1.0.0: a small customers database as that release left it, for the upgrade test.
-- Load after schema.sql (same folder) into an empty UTF8 database:
--   psql -v ON_ERROR_STOP=1 -1 -f schema.sql -f data.sql
--
-- The story (every value is what 1.0.0's own code would have written; see commit 6275d8f,
-- plugins/crmsync/store.py, engine.py, merge.py and include/sql/*.sql):
--   * 2026-11-26 00:12  crm_pull_customers (manual) pulls SUMIT's 3 customers: ids 1, 2, 3.
--   * 2026-11-29 09:12  the application edits customer 3's phone locally.
--   * 2026-11-30        SUMIT edits customer 3's phone too; the application adds customers 4, 5.
--   * 2026-12-01 01:00  crm_bidirectional_sync (scheduled): the pull finds a conflict on 3
--                       (newer_wins: SUMIT's UpdatedAt is newer, the CRM wins, recorded in
--                       crm_sync_conflicts); the push creates 4 in SUMIT (CRM id 40211) and
--                       SUMIT refuses 5 (recorded in crm_sync_errors): run status 'warning'.
--   * 2026-12-01 08:47  the application edits customer 4 (pending push).
--   * 2026-12-01 09:30  the application adds customer 6 (never pushed).
--
-- How 1.0.0 decided what to push (include/sql/select_push_candidates.sql, only_changed = true
-- in crm_bidirectional_sync): every row whose synced_fingerprint IS DISTINCT FROM
-- crmsync_local_fingerprint(row), i.e. edited since its last sync (4) or never synced
-- (synced_fingerprint NULL: 5, 6). There was no flag column, no retry queue and no
-- create_sent_at: crm_sync_errors was a log only. crm_push_customers pushed the ids it was
-- given, changed or not. Expected under 1.0.0's rule:
--   id  sumit_customer_id  state                                        pushed next?
--   1   40123              synced, unchanged since the first pull        no
--   2   40124              synced, Hebrew text (name, address, city,     no
--                          custom field "מקור" in metadata)
--   3   40150              synced after a conflict the CRM won (Hebrew)  no
--   4   40211              changed locally since its push                yes (update)
--   5   NULL               never pushed, its push refused on 2026-12-01  yes (create)
--   6   NULL               never pushed, new since the last run          yes (create)
--
-- Fingerprints are 1.0.0's (crmsync.fingerprint.fields_fingerprint / custom_fingerprint,
-- twins of crmsync_local_fingerprint in schema.sql); the checks at the end prove they agree.
-- Explicit ids, so the identity sequences are moved past them at the end.

-- Customers ---------------------------------------------------------------------------------
INSERT INTO sumit_customers (
    id, sumit_customer_id, name, email, phone, company_name, tax_id, address, city, state,
    country, zip_code, metadata, created_at, updated_at,
    synced_fingerprint, crm_fingerprint, crm_custom_fingerprint, synced_at)
VALUES
-- 1: pulled on 2026-11-26, unchanged on both sides since (custom field Segment from SUMIT).
(1, '40123', 'Orbit Logistics Ltd', 'accounts@orbit-logistics.co.il', '03-5551234',
 'Orbit Logistics Ltd', '514123456', '12 HaBarzel St', 'Tel Aviv', NULL, 'IL', '6971012',
 '{"Segment": "VIP", "last_synced_at": "2026-11-26T00:12:44.502113+00:00"}',
 '2026-11-26 00:12:44.618250+00', '2026-11-26 00:12:44.618250+00',
 'dae8a9028d6cffbfd2961edaea4d1788', 'dae8a9028d6cffbfd2961edaea4d1788',
 'c504eddbe7c888f046fd02f266fe503d', '2026-11-26 00:12:44.502113+00'),
-- 2: pulled on 2026-11-26, unchanged since; Hebrew text and a Hebrew custom field.
(2, '40124', 'דנה כהן', 'dana.cohen@example.co.il', '052-7654321',
 'כהן ייעוץ בע"מ', '038475612', 'רחוב הרצל 15', 'ירושלים', NULL, 'IL', '9414215',
 '{"מקור": "אתר", "last_synced_at": "2026-11-26T00:12:44.502113+00:00"}',
 '2026-11-26 00:12:44.618250+00', '2026-11-26 00:12:44.618250+00',
 '3b04c176c72c699efc906e79d8d1c422', '3b04c176c72c699efc906e79d8d1c422',
 '9bfc868521a82c3eb30710aa0b9d48bd', '2026-11-26 00:12:44.502113+00'),
-- 3: both sides changed the phone; the 2026-12-01 pull took the CRM's copy (conflict 1).
(3, '40150', 'מאפיית השחר', 'info@hashachar-bakery.co.il', '04-8770000',
 'מאפיית השחר בע"מ', '515987654', 'שדרות הנשיא 101', 'חיפה', NULL, 'IL', '3460212',
 '{"Segment": "Regular", "UpdatedAt": "2026-11-30T16:05:00Z", "last_synced_at": "2026-12-01T01:00:06.733912+00:00"}',
 '2026-11-26 00:12:44.618250+00', '2026-12-01 01:00:07.104377+00',
 '9291e32c9cc815506a01fd1e2cb768e9', '9291e32c9cc815506a01fd1e2cb768e9',
 '95ec8d5204313fd45134a2c2bb2fd256', '2026-12-01 01:00:06.733912+00'),
-- 4: created locally, pushed (created in SUMIT) on 2026-12-01, then edited (e-mail, phone):
--    its synced_fingerprint is the pushed values' (email yossi.m@..., phone 054-1112233).
--    1.0.0's push recorded no custom-field fingerprint, hence crm_custom_fingerprint NULL.
(4, '40211', 'Yossi Mizrahi', 'yossi.mizrahi@example.com', '054-9998877',
 NULL, NULL, '7 Rothschild Blvd', 'Tel Aviv', NULL, 'IL', NULL,
 '{"last_synced_at": "2026-12-01T01:00:09.581204+00:00"}',
 '2026-11-30 11:20:15.402911+00', '2026-12-01 08:47:31.220845+00',
 '285fd19f8933c46523fb466d4f894b0b', '285fd19f8933c46523fb466d4f894b0b',
 NULL, '2026-12-01 01:00:09.581204+00'),
-- 5: created locally; SUMIT refused its push on 2026-12-01 (an e-mail without a domain).
(5, NULL, 'Avi Ben-David', 'avi.bendavid@example', '050-3456789',
 NULL, NULL, 'Derech Ha''Atzmaut 40', 'Haifa', NULL, 'IL', '3303140',
 '{}',
 '2026-11-30 15:02:44.771930+00', '2026-11-30 15:02:44.771930+00',
 NULL, NULL, NULL, NULL),
-- 6: created locally after the last run; never pushed.
(6, NULL, 'Galil Dental Clinic', 'office@galil-dental.co.il', '04-6901234',
 'Galil Dental Clinic Ltd', '516000321', '3 HaNassi St', 'Karmiel', NULL, 'IL', '2161002',
 '{}',
 '2026-12-01 09:30:05.008164+00', '2026-12-01 09:30:05.008164+00',
 NULL, NULL, NULL, NULL);

-- Runs (written by each DAG's report task, store.write_run / upsert_run.sql) ------------------
INSERT INTO crm_sync_runs (
    id, dag_id, dag_run_id, operation, fetched, created, updated, unchanged, skipped, pushed,
    failed, conflicts, status, message, started_at, finished_at)
VALUES
(1, 'crm_pull_customers', 'manual__2026-11-26T00:12:40.118342+00:00', 'pull',
 3, 3, 0, 0, 0, 0, 0, 0, 'success',
 'Pull completed. Pulled: 3; fetched=3 created=3 updated=0 unchanged=0 skipped=0 pushed=0 failed=0 conflicts=0',
 '2026-11-26 00:12:41.006517+00', '2026-11-26 00:12:47.930264+00'),
(2, 'crm_bidirectional_sync', 'scheduled__2026-12-01T01:00:00+00:00', 'bidirectional',
 3, 0, 1, 2, 0, 1, 1, 1, 'warning',
 'Bidirectional sync completed. Pulled: 3, Pushed: 1 (Failed: 1); fetched=3 created=0 updated=1 '
 'unchanged=2 skipped=0 pushed=1 failed=1 conflicts=1; push: SUMIT rejected the request on '
 '/website/customers/update/: Invalid email address',
 '2026-12-01 01:00:02.410655+00', '2026-12-01 01:00:12.902117+00');

-- The refused push (engine._PushBatch: phase push, local id, no record excerpt for pushes).
-- In 1.0.0 this is a log row; 1.1.0 turns crm_sync_errors into its retry queue.
INSERT INTO crm_sync_errors (
    id, dag_id, dag_run_id, phase, customer_id, sumit_customer_id, error, record, created_at)
VALUES
(1, 'crm_bidirectional_sync', 'scheduled__2026-12-01T01:00:00+00:00', 'push', 5, NULL,
 'SUMIT rejected the request on /website/customers/update/: Invalid email address', NULL,
 '2026-12-01 01:00:09.588032+00');

-- The conflict the 2026-12-01 pull resolved (store.apply_pull / insert_conflicts.sql): both
-- versions of every synced column, as json.dumps wrote them.
INSERT INTO crm_sync_conflicts (
    id, dag_id, dag_run_id, customer_id, sumit_customer_id, winner, policy, local_values,
    crm_values, created_at)
VALUES
(1, 'crm_bidirectional_sync', 'scheduled__2026-12-01T01:00:00+00:00', 3, '40150', 'crm', 'newer_wins',
 '{"name": "מאפיית השחר", "email": "info@hashachar-bakery.co.il", "phone": "04-8123499", "company_name": "מאפיית השחר בע\"מ", "tax_id": "515987654", "address": "שדרות הנשיא 101", "city": "חיפה", "state": null, "country": "IL", "zip_code": "3460212"}',
 '{"name": "מאפיית השחר", "email": "info@hashachar-bakery.co.il", "phone": "04-8770000", "company_name": "מאפיית השחר בע\"מ", "tax_id": "515987654", "address": "שדרות הנשיא 101", "city": "חיפה", "state": null, "country": "IL", "zip_code": "3460212"}',
 '2026-12-01 01:00:07.104377+00');

-- Identity sequences past the explicit ids, as if the rows had been inserted normally.
SELECT setval(pg_get_serial_sequence('sumit_customers', 'id'), (SELECT max(id) FROM sumit_customers));
SELECT setval(pg_get_serial_sequence('crm_sync_runs', 'id'), (SELECT max(id) FROM crm_sync_runs));
SELECT setval(pg_get_serial_sequence('crm_sync_errors', 'id'), (SELECT max(id) FROM crm_sync_errors));
SELECT setval(pg_get_serial_sequence('crm_sync_conflicts', 'id'), (SELECT max(id) FROM crm_sync_conflicts));

-- Self-checks: fail loudly if a value above stops matching 1.0.0's rules.
DO $$
DECLARE
    pending bigint[];
BEGIN
    -- the synced rows' fingerprints are 1.0.0's SQL twin's
    IF EXISTS (SELECT 1 FROM sumit_customers AS c
               WHERE id IN (1, 2, 3) AND synced_fingerprint IS DISTINCT FROM crmsync_local_fingerprint(c)) THEN
        RAISE EXCEPTION 'data.sql: a synced row''s fingerprint does not match crmsync_local_fingerprint';
    END IF;
    -- 1.0.0's push selection (select_push_candidates.sql with only_changed = true)
    SELECT array_agg(id ORDER BY id) INTO pending FROM sumit_customers AS c
    WHERE synced_fingerprint IS DISTINCT FROM crmsync_local_fingerprint(c);
    IF pending IS DISTINCT FROM ARRAY[4, 5, 6]::bigint[] THEN
        RAISE EXCEPTION 'data.sql: 1.0.0 would push %, expected {4,5,6}', pending;
    END IF;
    -- customer 4's stored fingerprint is that of the values it was pushed with
    IF (SELECT synced_fingerprint FROM sumit_customers WHERE id = 4) IS DISTINCT FROM
       crmsync_fingerprint(ARRAY['Yossi Mizrahi', 'yossi.m@example.com', '054-1112233', NULL, NULL,
                                 '7 Rothschild Blvd', 'Tel Aviv', NULL, 'IL', NULL]) THEN
        RAISE EXCEPTION 'data.sql: customer 4''s synced_fingerprint is not its pushed values''';
    END IF;
END $$;
