-- The Customers search's indexes (`crmsync search-index`; optional): trigram indexes (pg_trgm)
-- on the three columns a search reads with a substring match, so a search for a rare name,
-- e-mail or phone over a million customers reads a few index pages instead of every row. Local
-- and CRM ids need none (the primary key and the CRM id's unique index). They are left to the
-- operator because they cost every write: a first pull of 100,000 customers takes about twice
-- as long with them (docs/performance.md), and building them over 1,000,000 customers took
-- about 40 seconds on a 2-core machine. Built CONCURRENTLY: syncs and the console go on while they build.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX CONCURRENTLY IF NOT EXISTS sumit_customers_name_trgm_idx
    ON sumit_customers USING gin (name gin_trgm_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS sumit_customers_email_trgm_idx
    ON sumit_customers USING gin (email gin_trgm_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS sumit_customers_phone_trgm_idx
    ON sumit_customers USING gin ((translate(phone, ' -().+/', '')) gin_trgm_ops);
