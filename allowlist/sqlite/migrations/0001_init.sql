-- The registry's schema. Times are RFC 3339 UTC text.
CREATE TABLE departments (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY,
    department TEXT NOT NULL REFERENCES departments(id),
    name       TEXT NOT NULL,
    email      TEXT NOT NULL,
    role       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX contacts_department ON contacts(department);

CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'owner', 'reader')),
    department TEXT REFERENCES departments(id),
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);

CREATE TABLE sites (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    category     TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    homepage     TEXT NOT NULL DEFAULT '',
    owner_name   TEXT NOT NULL,
    owner_email  TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    proposed_by  TEXT NOT NULL DEFAULT '',
    revision     INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- Every revision's domain set is kept: decisions refer to the revision
-- they were made on.
CREATE TABLE site_domains (
    site     TEXT NOT NULL REFERENCES sites(id),
    revision INTEGER NOT NULL,
    pattern  TEXT NOT NULL,
    PRIMARY KEY (site, revision, pattern)
);
CREATE INDEX site_domains_pattern ON site_domains(pattern);

CREATE TABLE signoffs (
    site       TEXT NOT NULL REFERENCES sites(id),
    department TEXT NOT NULL REFERENCES departments(id),
    decision   TEXT NOT NULL CHECK (decision IN ('approve', 'object')),
    revision   INTEGER NOT NULL,
    by         TEXT NOT NULL,
    comment    TEXT NOT NULL DEFAULT '',
    at         TEXT NOT NULL,
    PRIMARY KEY (site, department)
);

CREATE TABLE requests (
    id         INTEGER PRIMARY KEY,
    tool       TEXT NOT NULL,
    url        TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL,
    department TEXT NOT NULL REFERENCES departments(id),
    email      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);

-- Published versions. body is the exact signed JSON and never changes.
CREATE TABLE versions (
    scope      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    entries    INTEGER NOT NULL,
    added      INTEGER NOT NULL,
    removed    INTEGER NOT NULL,
    body       BLOB NOT NULL,
    signature  TEXT NOT NULL,
    PRIMARY KEY (scope, version)
);

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    object    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

-- The audit log is append-only.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER versions_no_update BEFORE UPDATE ON versions BEGIN SELECT RAISE(ABORT, 'published versions never change'); END;

-- Settings that every process opening the database must agree on, such as
-- the quorum.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
