-- Reminders: the plan and its answers. The database, not the scheduler, knows
-- what is due; the partial indexes keep "what is next" cheap at any size.
CREATE TABLE reminders (
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
    planned_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    delivered_at TEXT,
    acked_at TEXT,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    next_check_at TEXT,
    rounds INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reminders_due ON reminders (due_at) WHERE status IN ('pending', 'snoozed');
CREATE INDEX reminders_check ON reminders (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX reminders_open ON reminders (profile, status) WHERE status IN ('sent', 'late');
CREATE INDEX reminders_session ON reminders (session_id);

-- Outbound deliveries, written in the transaction that caused them and sent
-- afterwards; the key makes a second write of the same delivery a no-op.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    reminder_id TEXT,
    profile TEXT,
    not_before TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TEXT
);
CREATE INDEX outbox_pending ON outbox (not_before, id) WHERE status = 'pending';
CREATE INDEX outbox_reminder ON outbox (reminder_id) WHERE status = 'pending';
