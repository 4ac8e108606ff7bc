-- A list content made since is stored in chunks, each kept once by its
-- SHA-256 and cut where the entries themselves say (chunks.go), so that a
-- new version that adds or removes a site stores the one or two chunks
-- around the change instead of the whole array again (85 MB per version
-- at a million entries). Such a content keeps an empty entries blob and
-- lists its chunks in order; contents stored before keep their entries
-- whole.
CREATE TABLE chunks (
    sha256 TEXT PRIMARY KEY,
    bytes  BLOB NOT NULL
);
CREATE TABLE content_chunks (
    content TEXT NOT NULL REFERENCES contents (sha256),
    seq     INTEGER NOT NULL,
    chunk   TEXT NOT NULL REFERENCES chunks (sha256),
    PRIMARY KEY (content, seq)
) WITHOUT ROWID;
CREATE TRIGGER chunks_no_update BEFORE UPDATE ON chunks BEGIN SELECT RAISE(ABORT, 'list chunks never change'); END;
CREATE TRIGGER chunks_no_delete BEFORE DELETE ON chunks BEGIN SELECT RAISE(ABORT, 'list chunks are kept with their contents'); END;
CREATE TRIGGER content_chunks_no_update BEFORE UPDATE ON content_chunks BEGIN SELECT RAISE(ABORT, 'list contents never change'); END;
CREATE TRIGGER content_chunks_no_delete BEFORE DELETE ON content_chunks BEGIN SELECT RAISE(ABORT, 'list contents are kept with their versions'); END;
