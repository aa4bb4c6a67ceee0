-- Smaller rows, so that the journal kept forever grows by less each year (issue 14).
--
-- 1. Moments as UTC text without the offset and without a fraction of zero:
-- '2027-01-04T19:00:01' instead of '2027-01-04T19:00:01.000000+00:00' (19 characters
-- instead of 32), still in time order as text (store/timestamps.py). compact_time() is
-- that module's compact(), which the migration runner lends to this script. (Reminders:
-- see 3.)
UPDATE events SET occurred_at = compact_time(occurred_at), received_at = compact_time(received_at);
UPDATE sessions SET started_at = compact_time(started_at), ended_at = compact_time(ended_at),
    last_seen_at = compact_time(last_seen_at);
UPDATE devices SET last_seen_at = compact_time(last_seen_at);
UPDATE dead_letters SET received_at = compact_time(received_at);
UPDATE outbox SET not_before = compact_time(not_before), created_at = compact_time(created_at),
    sent_at = compact_time(sent_at);

-- 2. Skin checks and products applied are found by nothing but their event id: stored
-- in the key's B-tree itself (WITHOUT ROWID) instead of a rowid table plus a second
-- copy of every key in its index.
CREATE TABLE skin_checks_v6 (
    event_id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    redness INTEGER NOT NULL,
    note TEXT
) WITHOUT ROWID;
INSERT INTO skin_checks_v6 (event_id, profile, checked_at, redness, note)
    SELECT event_id, profile, compact_time(checked_at), redness, note FROM skin_checks;
DROP TABLE skin_checks;
ALTER TABLE skin_checks_v6 RENAME TO skin_checks;

CREATE TABLE products_applied_v6 (
    event_id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    product TEXT NOT NULL,
    ingredients TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO products_applied_v6 (event_id, profile, applied_at, product, ingredients)
    SELECT event_id, profile, compact_time(applied_at), product, ingredients
    FROM products_applied;
DROP TABLE products_applied;
ALTER TABLE products_applied_v6 RENAME TO products_applied;

-- 3. Reminders, kept forever: planned_at (the first due time) is NULL while it equals
-- due_at, as it does unless the reminder was snoozed; and no reminders_open, which held
-- (profile, expires_at) of every prompt ever shown. A profile's open prompts are the
-- unexpired ones, a handful in a household: reminders_expiry finds them all, and the
-- profile is checked on those rows.
CREATE TABLE reminders_v6 (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    session_id TEXT,
    profile TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    severity TEXT NOT NULL,
    channels TEXT NOT NULL,
    needs_ack INTEGER NOT NULL,
    escalation TEXT NOT NULL,
    status TEXT NOT NULL,
    due_at TEXT NOT NULL,
    planned_at TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    delivered_at TEXT,
    acked_at TEXT,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    next_check_at TEXT,
    rounds INTEGER NOT NULL DEFAULT 0
);
INSERT INTO reminders_v6 (seq, id, session_id, profile, kind, title, message, severity,
    channels, needs_ack, escalation, status, due_at, planned_at, created_at, expires_at,
    delivered_at, acked_at, escalation_level, next_check_at, rounds)
    SELECT seq, id, session_id, profile, kind, title, message, severity, channels, needs_ack,
        escalation, status, compact_time(due_at),
        nullif(compact_time(planned_at), compact_time(due_at)), compact_time(created_at),
        compact_time(expires_at), compact_time(delivered_at), compact_time(acked_at),
        escalation_level, compact_time(next_check_at), rounds
    FROM reminders ORDER BY seq;
DROP TABLE reminders;
ALTER TABLE reminders_v6 RENAME TO reminders;
CREATE INDEX reminders_due ON reminders (due_at) WHERE status IN ('pending', 'snoozed');
CREATE INDEX reminders_check ON reminders (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX reminders_session ON reminders (session_id);
CREATE INDEX reminders_expiry ON reminders (expires_at) WHERE status IN ('sent', 'late');

-- 4. Events are looked up by profile and type for two types only: a device's heartbeat
-- of the day (ingest, and the thinning of old heartbeat rows) and the last cleansing
-- (aftercare). The index held every event; now only those. A query uses it only when
-- it repeats this WHERE term word for word (EVENT_INDEX_TYPES in store/sqlite.py).
DROP INDEX events_profile_type;
CREATE INDEX events_profile_type ON events (profile, type, occurred_at)
    WHERE type IN ('heartbeat', 'cleansed');

-- 5. No query reads sessions_profile: sessions(profile) and recent_sessions() take an
-- optional profile (":profile IS NULL OR profile = :profile"), which SQLite answers by
-- reading the table in seq order (EXPLAIN QUERY PLAN); the per-turn read by profile,
-- last_treated_session(), seeks sessions_treated.
DROP INDEX sessions_profile;
