-- Network endpoints and handling (the SQLite store's 0006_networks). A
-- site's notes say what breaks when it is blocked.
ALTER TABLE sites ADD COLUMN notes TEXT NOT NULL DEFAULT '';

-- The networks (canonical JSON) and handling of each revision that has
-- any; a revision without a row has none, and the strict handling.
CREATE TABLE site_endpoints (
    site           TEXT NOT NULL REFERENCES sites(id),
    revision       INTEGER NOT NULL,
    networks       TEXT NOT NULL,
    tls_inspection TEXT NOT NULL CHECK (tls_inspection IN ('allow', 'bypass')),
    proxy          TEXT NOT NULL CHECK (proxy IN ('proxy', 'direct')),
    PRIMARY KEY (site, revision)
);

-- A version's endpoint records (canonical JSON; NULL when none), the
-- signature of its schema-2 body, and what it changed in the endpoints of
-- the one before (NULL when nothing).
ALTER TABLE versions ADD COLUMN endpoints BYTEA;
ALTER TABLE versions ADD COLUMN endpoints_signature TEXT;
ALTER TABLE versions ADD COLUMN endpoint_changes BYTEA;
