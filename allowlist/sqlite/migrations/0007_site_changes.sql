-- Which site each write changed (its id; '-' for none; '' for any), by
-- the write generation it made (meta key "generation"). A process whose
-- sites in memory are a few generations behind, because another process
-- or instance wrote meanwhile, reads again only the sites those writes
-- changed, instead of every site. Rows far behind are pruned.
CREATE TABLE site_changes (
    generation INTEGER PRIMARY KEY,
    site       TEXT NOT NULL
);
