-- Each distinct list content (the canonical JSON array of entries, whose
-- hash is a version's sha256) is stored once. Department scopes that list
-- exactly what common lists share it with common, so a change to common no
-- longer stores one copy of the whole list per department. A version made
-- since keeps only the bytes of its body before the entries (head): its
-- body is head, then its content, then "}\n", the same bytes that were
-- signed. Versions made before keep their whole body and a NULL head.
CREATE TABLE contents (
    sha256  TEXT PRIMARY KEY,
    entries BLOB NOT NULL
);
ALTER TABLE versions ADD COLUMN head BLOB;
CREATE TRIGGER contents_no_update BEFORE UPDATE ON contents BEGIN SELECT RAISE(ABORT, 'list contents never change'); END;
CREATE TRIGGER contents_no_delete BEFORE DELETE ON contents BEGIN SELECT RAISE(ABORT, 'list contents are kept with their versions'); END;
