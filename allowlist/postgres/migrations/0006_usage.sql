-- Usage reports from departments' resolvers (POST /v1/usage): the SQLite
-- store's 0009_usage in PostgreSQL's types. Counts only,
-- never a client address. Times are "YYYY-MM-DDTHH:MM:SSZ" (whole seconds,
-- so that text order is time order), days "YYYY-MM-DD" (UTC, the day a
-- report's period starts). Everything here is deleted 400 days after its
-- period (docs/privacy.md); none of it goes into the audit log, which is
-- never deleted.

-- One row per report received: report_id makes a report sent twice count
-- once, and the counts are the answer given to it.
CREATE TABLE usage_reports (
    report_id       TEXT PRIMARY KEY,
    department      TEXT NOT NULL REFERENCES departments(id),
    scope           TEXT NOT NULL,
    list_version    BIGINT NOT NULL,
    mode            TEXT NOT NULL,
    period_start    TEXT NOT NULL,
    period_end      TEXT NOT NULL,
    k               INTEGER NOT NULL,
    received_at     TEXT NOT NULL,
    entries         INTEGER NOT NULL,
    ignored_entries INTEGER NOT NULL,
    refused         INTEGER NOT NULL
);
CREATE INDEX usage_reports_period_end ON usage_reports(period_end);

-- Hits on list entries, per department and day; last_hit is the end of
-- the latest period that hit the entry that day.
CREATE TABLE usage_hits (
    department TEXT NOT NULL REFERENCES departments(id),
    day        TEXT NOT NULL,
    pattern    TEXT NOT NULL,
    site       TEXT NOT NULL,
    hits       BIGINT NOT NULL,
    last_hit   TEXT NOT NULL,
    PRIMARY KEY (department, day, pattern)
);
CREATE INDEX usage_hits_day ON usage_hits(day);
CREATE INDEX usage_hits_site ON usage_hits(site, day);

-- Refused registrable domains, per department and day: queries summed,
-- clients the most distinct clients any one period of the day saw.
CREATE TABLE usage_refused (
    department TEXT NOT NULL REFERENCES departments(id),
    day        TEXT NOT NULL,
    domain     TEXT NOT NULL,
    queries    BIGINT NOT NULL,
    clients    INTEGER NOT NULL,
    PRIMARY KEY (department, day, domain)
);
CREATE INDEX usage_refused_day ON usage_refused(day);
