-- One pulled page in one statement. The page travels as one JSON array with one array per
-- customer, by position (see crmsync.core.pulled): PostgreSQL parses it in C, and without a
-- key per value it is half the text of an array of objects and a quarter of the parsing work.
-- The statement
--   1. remembers every CRM id on the page, and %(also_seen)s (ids of rejected records), as
--      seen by this pull (crmsync_seen, read by flag_vanished.sql), unless %(note_seen)s is
--      false (a pull into a table with no linked customer: nothing can vanish from it);
--   2. when matching (unlinked local customers have key values: crmsync.core.matching), sets
--      aside in crmsync_match_crm the customers no local row is linked to whose tax id, e-mail
--      or phone an unlinked local customer has (crmsync_match_local): match_find.sql decides
--      them once the whole listing is read;
--   3. inserts the other customers no local row is linked to: a new CRM customer is taken whole
--      (merge.plan_pull's first rule), its custom fields and last_synced_at in metadata. A row
--      another writer linked to the same CRM id in the meantime is left alone; the next pull
--      compares it;
--   4. returns how many it inserted and set aside, and the local state of the linked customers whose CRM copy
--      changed since the last pull (either fingerprint differs), or of every linked one when
--      %(full_resync)s: the ones merge.plan_pull must decide. For the others it plans nothing.
-- The final SELECT reads the snapshot from before the insert, so it never returns a new row; it
-- looks up only the page's customers the insert left alone (none, on a first pull: no index
-- probe for the thousand rows it just inserted, a fifth of the statement's time).
--   5. when known (linked customers may be on the page: a re-pull): records the hash of each page's record
--      (position 17, crmsync.core.fingerprint.record_hashes) on the linked customers whose CRM copy
--      is unchanged but whose hash differs (the first re-pull after an upgrade, or a field
--      crmsync does not map changed in SUMIT), so the next pull skips them without mapping
--      (pull_unknown_records.sql). Those that changed get theirs with update_pulled.sql.
-- The parts marked "when matching" are left out of a pull with nothing to match (crmsync.db.sql.
-- load_switched): not planned at all, they cost a first pull of 100,000 a tenth of a second.
WITH page AS (
    SELECT r->>0 AS sumit_customer_id, r->>1 AS name, r->>2 AS email, r->>3 AS phone,
           r->>4 AS company_name, r->>5 AS tax_id, r->>6 AS address, r->>7 AS city, r->>8 AS state,
           r->>9 AS country, r->>10 AS zip_code,
           (r->11) || jsonb_build_object('last_synced_at', %(synced_at_text)s::text) AS metadata,
           r->>12 AS fingerprint, r->>13 AS custom_fingerprint,
           r AS raw,  -- when matching
           coalesce(r->16->>'row_fingerprint', r->>12) AS row_fingerprint,
           (r->>17)::uuid AS record_hash
    FROM jsonb_array_elements(convert_from(%(rows)b, 'UTF8')::jsonb) AS r  -- the page's UTF-8 bytes as sent
), seen AS (
    INSERT INTO crmsync_seen
    SELECT sumit_customer_id FROM page WHERE %(note_seen)s
    UNION ALL
    SELECT json_array_elements_text(%(also_seen)s::json) WHERE %(note_seen)s
-- when known: begin
), rehashed AS (
    UPDATE sumit_customers AS c SET crm_record_hash = v.record_hash
    FROM page AS v
    WHERE c.sumit_customer_id = v.sumit_customer_id
      AND v.record_hash IS NOT NULL
      AND c.crm_record_hash IS DISTINCT FROM v.record_hash
      AND c.crm_fingerprint = v.fingerprint
      AND c.crm_custom_fingerprint IS NOT DISTINCT FROM v.custom_fingerprint
-- when known: end
-- when matching: begin
), hits AS (
    SELECT DISTINCT v.sumit_customer_id
    FROM page AS v
    CROSS JOIN LATERAL (SELECT u.key, crmsync_match_value(u.key, CASE u.key WHEN 'tax_id' THEN v.tax_id
                                                                          WHEN 'email' THEN v.email
                                                                          WHEN 'phone' THEN v.phone END)
                        FROM unnest(%(match_keys)s::text[]) AS u(key)) AS k(key, value)  -- the keys in force only
    JOIN crmsync_match_local AS m ON m.value = k.value AND m.key = k.key
    WHERE NOT EXISTS (SELECT 1 FROM sumit_customers AS c WHERE c.sumit_customer_id = v.sumit_customer_id)
), set_aside AS (
    INSERT INTO crmsync_match_crm (sumit_customer_id, row)
    SELECT v.sumit_customer_id, v.raw FROM page AS v WHERE v.sumit_customer_id IN (SELECT h.sumit_customer_id FROM hits AS h)
    ON CONFLICT (sumit_customer_id) DO UPDATE SET row = EXCLUDED.row
    RETURNING 1
-- when matching: end
), inserted AS (
    INSERT INTO sumit_customers AS c (
        sumit_customer_id, name, email, phone, company_name, tax_id, address, city, state, country,
        zip_code, metadata, synced_fingerprint, crm_fingerprint, crm_custom_fingerprint, synced_at,
        crm_record_hash, local_changed)
    SELECT v.sumit_customer_id, v.name, v.email, v.phone, v.company_name, v.tax_id, v.address,
           v.city, v.state, v.country, v.zip_code, v.metadata, v.row_fingerprint, v.fingerprint,
           v.custom_fingerprint, %(synced_at)s, v.record_hash, false
    FROM page AS v
    WHERE v.sumit_customer_id NOT IN (SELECT h.sumit_customer_id FROM hits AS h)  -- when matching
    ON CONFLICT (sumit_customer_id) DO NOTHING
    RETURNING c.sumit_customer_id
)
SELECT n.inserted, n.set_aside, s.*
FROM (SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM set_aside) AS set_aside) AS n  -- when matching
FROM (SELECT (SELECT count(*) FROM inserted) AS inserted, 0 AS set_aside) AS n  -- unless matching
LEFT JOIN (
    SELECT c.id, c.sumit_customer_id,
           c.name, c.email, c.phone, c.company_name, c.tax_id, c.address, c.city, c.state,
           c.country, c.zip_code,
           c.synced_fingerprint, c.crm_fingerprint, c.crm_custom_fingerprint, c.updated_at,
           crmsync_local_fingerprint(c) AS local_fingerprint
    FROM sumit_customers AS c
    JOIN page AS v ON v.sumit_customer_id = c.sumit_customer_id
    WHERE v.sumit_customer_id NOT IN (SELECT i.sumit_customer_id FROM inserted AS i)
      AND (%(full_resync)s
           OR c.crm_fingerprint IS DISTINCT FROM v.fingerprint
           OR c.crm_custom_fingerprint IS DISTINCT FROM v.custom_fingerprint)
) AS s ON true
