-- Which site each write changed (its id; '-' for none; '' for any), by
-- the write generation it made (meta key "generation"): an instance whose
-- sites in memory are behind, because another instance wrote meanwhile,
-- reads again only the sites those writes changed. Rows far behind are
-- pruned.
CREATE TABLE site_changes (
    generation BIGINT PRIMARY KEY,
    site       TEXT NOT NULL
);
