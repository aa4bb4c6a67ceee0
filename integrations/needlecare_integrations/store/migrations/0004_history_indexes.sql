-- Indexes for queries that ran on every turn and read a profile's whole history:
-- shown prompts stay 'sent' after they expire, and sessions only accumulate.

-- The next expiry to wake for: a seek instead of a scan of every prompt ever shown.
CREATE INDEX reminders_expiry ON reminders (expires_at) WHERE status IN ('sent', 'late');

-- A profile's open prompts: only the unexpired ones are read.
DROP INDEX reminders_open;
CREATE INDEX reminders_open ON reminders (profile, expires_at) WHERE status IN ('sent', 'late');

-- The outbox in insertion order, pending items only (the planner scanned the table).
CREATE INDEX outbox_pending_order ON outbox (id) WHERE status = 'pending';

-- A profile's newest closed session, without sorting its history.
CREATE INDEX sessions_treated ON sessions (profile, coalesce(ended_at, last_seen_at))
    WHERE status != 'open';
