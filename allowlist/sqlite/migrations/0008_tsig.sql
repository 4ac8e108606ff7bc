-- Zone-transfer keys (TSIG, HMAC-SHA256). The secret must be kept whole to
-- check a signature; it is never listed by the API. scopes is a JSON array
-- of the scopes the key may transfer, empty for all.
CREATE TABLE tsig_keys (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    secret     BLOB NOT NULL,
    scopes     TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
