-- Every accepted inbound event; event_id makes redelivery idempotent.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    type TEXT NOT NULL,
    profile TEXT,
    occurred_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_profile_type ON events (profile, type, occurred_at);

CREATE TABLE sessions (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    profile TEXT NOT NULL,
    device_id TEXT,
    setting TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    last_seen_at TEXT NOT NULL,
    source TEXT NOT NULL,
    needle_depth_mm REAL,
    zones TEXT NOT NULL DEFAULT '[]',
    session_ref TEXT,
    passes INTEGER,
    duration_s INTEGER
);
CREATE INDEX sessions_device ON sessions (device_id, seq);
CREATE INDEX sessions_profile ON sessions (profile, seq);
CREATE INDEX sessions_open ON sessions (status) WHERE status = 'open';

CREATE TABLE skin_checks (
    event_id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    redness INTEGER NOT NULL,
    note TEXT
);

CREATE TABLE products_applied (
    event_id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    product TEXT NOT NULL,
    ingredients TEXT NOT NULL
);

CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    last_seen_at TEXT NOT NULL,
    battery_pct INTEGER,
    cartridge_uses INTEGER
);

CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload_excerpt TEXT NOT NULL,
    payload_size INTEGER NOT NULL,
    reason TEXT NOT NULL
);
