-- Governance: staff requests tracked to an answer, timers with stored due
-- times, approval clocks, lazy consensus, and notifications.

-- A request's reference is a capability: only its SHA-256 is stored.
ALTER TABLE requests ADD COLUMN reference_hash TEXT;
ALTER TABLE requests ADD COLUMN status TEXT NOT NULL DEFAULT 'received';
ALTER TABLE requests ADD COLUMN answer TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN site TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN answered_by TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN answered_at TEXT;
ALTER TABLE requests ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN grp TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX requests_reference ON requests(reference_hash);
CREATE INDEX requests_open ON requests(status, department);

-- The revision of a site that joined common by lazy consensus.
CREATE TABLE site_consensus (
    site     TEXT PRIMARY KEY REFERENCES sites(id),
    revision INTEGER NOT NULL,
    at       TEXT NOT NULL
);

-- When a decision on a site was last withdrawn: lazy consensus counts its
-- quiet time from there, so withdrawing an objection restarts the clock.
CREATE TABLE decision_withdrawals (
    site TEXT PRIMARY KEY REFERENCES sites(id),
    at   TEXT NOT NULL
);

-- When an approval was last renewed, and when its department was warned
-- that it is about to expire. An approval's age runs from the later of its
-- decision and its renewal.
CREATE TABLE approval_clocks (
    site       TEXT NOT NULL REFERENCES sites(id),
    department TEXT NOT NULL REFERENCES departments(id),
    renewed_at TEXT,
    warned_at  TEXT,
    PRIMARY KEY (site, department)
);

-- Approvals that expired: they no longer count, and "why not" names them.
CREATE TABLE expired_signoffs (
    site       TEXT NOT NULL REFERENCES sites(id),
    department TEXT NOT NULL REFERENCES departments(id),
    revision   INTEGER NOT NULL,
    by         TEXT NOT NULL,
    comment    TEXT NOT NULL DEFAULT '',
    at         TEXT NOT NULL,
    expired_at TEXT NOT NULL,
    PRIMARY KEY (site, department)
);

-- Timers. A job runs once per (kind, subject, due time): the process that
-- marks it done in the same transaction as its effect is the one that ran
-- it, however many registry processes share the database.
CREATE TABLE jobs (
    id      INTEGER PRIMARY KEY,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    due_at  TEXT NOT NULL,
    done_at TEXT,
    result  TEXT NOT NULL DEFAULT '',
    UNIQUE (kind, subject, due_at)
);
CREATE INDEX jobs_due ON jobs(done_at, due_at);

CREATE TABLE webhooks (
    department TEXT PRIMARY KEY REFERENCES departments(id),
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);

-- The outbox: one row per notification and destination, retried with
-- backoff; the delivery log owners read.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    department   TEXT NOT NULL,
    event        TEXT NOT NULL,
    channel      TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    target       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    payload      BLOB NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    next_at      TEXT NOT NULL,
    lease_until  TEXT,
    created_at   TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX deliveries_due ON deliveries(status, next_at);
CREATE INDEX deliveries_department ON deliveries(department, id);
