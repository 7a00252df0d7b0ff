-- Statistics for the planner before flag_vanished.sql joins the seen ids (a temporary table
-- is never analysed by autovacuum: unanalysed, the join took four times as long).
ANALYZE crmsync_seen
