-- The entries each version added and removed against the version before
-- it, as canonical JSON arrays, so that a diff between consecutive
-- versions (what a patching resolver asks for) is read, not computed from
-- two whole bodies. NULL for versions published before this migration and
-- for version 0.
ALTER TABLE versions ADD COLUMN added_entries BLOB;
ALTER TABLE versions ADD COLUMN removed_entries BLOB;
