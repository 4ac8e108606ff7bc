-- Usage limits (issue #21): how many refused domains a report brought
-- that the day's cap per department left out; indexes that let the
-- dashboard's daily totals read the indexes alone (they replace the
-- indexes on day, which they begin with); and counts stored before the
-- counts saturated brought down to the cap (allowlist.UsageMaxTotal).
ALTER TABLE usage_reports ADD COLUMN ignored_refused INTEGER NOT NULL DEFAULT 0;
CREATE INDEX usage_hits_day_hits ON usage_hits(day, hits);
CREATE INDEX usage_refused_day_domain ON usage_refused(day, domain, queries);
DROP INDEX usage_hits_day;
DROP INDEX usage_refused_day;
UPDATE usage_hits SET hits = 1000000000000000 WHERE hits > 1000000000000000;
UPDATE usage_refused SET queries = 1000000000000000 WHERE queries > 1000000000000000;
