-- Small facts the daemon must remember across restarts, e.g. which profiles it
-- has announced to Home Assistant, so it can remove the ones that left the config.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
