-- The CRM customers set aside for matching that found no candidate after all (every pair was
-- excluded by a person): inserted as new, as pull_page.sql inserts any new customer.
WITH inserted AS (
    INSERT INTO sumit_customers AS c (
        sumit_customer_id, name, email, phone, company_name, tax_id, address, city, state, country,
        zip_code, metadata, synced_fingerprint, crm_fingerprint, crm_custom_fingerprint, synced_at,
        crm_record_hash, local_changed)
    SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, r->>7, r->>8, r->>9, r->>10,
           (r->11) || jsonb_build_object('last_synced_at', %(synced_at_text)s::text),
           coalesce(r->16->>'row_fingerprint', r->>12), r->>12, r->>13, %(synced_at)s, (r->>17)::uuid, false
    FROM crmsync_match_found AS f
    JOIN crmsync_match_crm AS m ON m.sumit_customer_id = f.sumit_customer_id
    CROSS JOIN LATERAL (SELECT m.row AS r) AS x
    WHERE f.kind = 'new'
    ON CONFLICT (sumit_customer_id) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM inserted
