-- Retention: old events, dead letters beyond the cap and delivered outbox items are
-- purged in small batches, and freed pages go back to the file system. That needs
-- auto_vacuum = INCREMENTAL, which an existing file only takes with a VACUUM; the
-- migration runner does that once, outside this transaction, right after this step
-- (and after the usual copy of the file aside). How many dead letters the cap
-- dropped is kept here:
INSERT OR IGNORE INTO meta (key, value) VALUES ('dead_letters_dropped', '0');
