-- Which of a page's records a re-pull must map (crmsync.flows.pull): the positions (0-based, in
-- page order) of the records whose hash (crmsync.core.fingerprint.record_hashes) is not the one
-- the linked customer of that CRM id was last pulled with: new customers, changed ones, and
-- those pulled before crmsync kept hashes. The others map to the rows the table already holds,
-- so they are not decoded at all, and are noted as seen by this pull here (crmsync_seen, as
-- pull_page.sql notes the rest), unless note_seen is false. The ids and hashes travel as two
-- JSON arrays (psycopg's text arrays cost 6 µs an element to write; JSON, parsed in C, a tenth of
-- it). Each record's stored hash is looked up by a subquery, one probe of the CRM id's unique
-- index: a join let the planner choose to hash the whole table when its statistics still
-- described it empty (right after a first pull), 0.4 s a page at 1,000,000.
WITH r AS (
    SELECT r.sumit_customer_id, r.position,
           (SELECT c.crm_record_hash FROM sumit_customers AS c WHERE c.sumit_customer_id = r.sumit_customer_id)
               IS NOT DISTINCT FROM r.record_hash::uuid AS known
    FROM ROWS FROM (json_array_elements_text(%(ids)s::json), json_array_elements_text(%(hashes)s::json))
         WITH ORDINALITY AS r(sumit_customer_id, record_hash, position)
), seen AS (
    INSERT INTO crmsync_seen SELECT r.sumit_customer_id FROM r WHERE r.known AND %(note_seen)s
)
SELECT r.position - 1 FROM r WHERE NOT r.known ORDER BY r.position
