"""Migration 6 on a real schema-5 file holding rows as the code of schema 5 wrote them."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from needlecare.domain.records import DeadLetter, ProductRecord, SkinCheckRecord
from needlecare.domain.reminders import ReminderStatus
from needlecare_integrations.store import SqliteStore
from needlecare_integrations.store.migrations import _migrations, migrate

pytestmark = pytest.mark.integration

NOW = datetime(2027, 3, 1, 19, 5, 7, tzinfo=UTC)
EXACT = NOW + timedelta(microseconds=250_000)  # a moment with a fraction survives whole
DAY = timedelta(days=1)
# Every column that holds a moment, by table.
MOMENTS = {
    "events": ("occurred_at", "received_at"),
    "sessions": ("started_at", "ended_at", "last_seen_at"),
    "devices": ("last_seen_at",),
    "dead_letters": ("received_at",),
    "skin_checks": ("checked_at",),
    "products_applied": ("applied_at",),
    "reminders": ("due_at", "planned_at", "created_at", "expires_at", "delivered_at"),
    "outbox": ("not_before", "created_at", "sent_at"),
}


def v5(moment: datetime) -> str:
    """A moment as schema 5's code wrote it."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def schema_5_store(path: Path) -> None:
    """A schema-5 file (auto_vacuum incremental, as new ones were made) with every kind of row."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        migrate(conn, path, backup=False, now=NOW, migrations=_migrations()[:5])
        conn.execute("BEGIN")
        for n in range(300):
            at = v5(NOW - n * DAY)
            for device in ("pen1", "pen2"):
                conn.execute(
                    "INSERT INTO events (event_id, source, source_id, type, profile, occurred_at,"
                    " received_at, payload)"
                    " VALUES (?, 'device', ?, 'heartbeat', 'alice', ?, ?, '{}')",
                    (f"hb-{device}-{n}", device, at, at),
                )
            conn.execute(
                "INSERT INTO events (event_id, source, source_id, type, profile, occurred_at,"
                " received_at, payload) VALUES (?, 'mirror', 'hall', 'skin_check', 'alice', ?, ?,"
                " '{}')",
                (f"sc{n}", at, at),
            )
            conn.execute(
                "INSERT INTO skin_checks VALUES (?, 'alice', ?, ?, NULL)", (f"sc{n}", at, n % 50)
            )
            conn.execute(
                "INSERT INTO products_applied VALUES (?, 'alice', ?, 'serum', '[\"niacinamide\"]')",
                (f"pa{n}", at),
            )
            conn.execute(
                "INSERT INTO dead_letters (received_at, topic, payload_excerpt, payload_size,"
                " reason) VALUES (?, 'needlecare/device/pen1/event', '{x', 2, 'bad')",
                (at,),
            )
        conn.execute(
            "INSERT INTO events (event_id, source, source_id, type, profile, occurred_at,"
            " received_at, payload) VALUES ('cl1', 'mirror', 'hall', 'cleansed', 'alice', ?, ?,"
            " '{}')",
            (v5(EXACT), v5(EXACT)),
        )
        conn.execute(
            "INSERT INTO sessions (id, profile, device_id, setting, status, started_at, ended_at,"
            " last_seen_at, source) VALUES ('s1', 'alice', 'pen1', 'home', 'completed', ?, ?, ?,"
            " 'device')",
            (v5(NOW - DAY), v5(EXACT - DAY), v5(EXACT - DAY)),
        )
        conn.execute("INSERT INTO devices VALUES ('pen1', ?, 80, 3)", (v5(EXACT),))
        conn.execute(
            "INSERT INTO reminders (id, session_id, profile, kind, title, message, severity,"
            " channels, needs_ack, escalation, status, due_at, planned_at, created_at, expires_at,"
            " delivered_at) VALUES ('r1', 's1', 'alice', 'soothe', 'Soothe', 'Apply a serum.',"
            " 'info', '[\"mirror\"]', 1, '[]', 'sent', ?, ?, ?, ?, ?)",
            (v5(NOW - DAY), v5(NOW - DAY), v5(NOW - 2 * DAY), v5(NOW + DAY), v5(EXACT - DAY)),
        )
        conn.execute(  # snoozed: due later than first planned
            "INSERT INTO reminders (id, session_id, profile, kind, title, message, severity,"
            " channels, needs_ack, escalation, status, due_at, planned_at, created_at)"
            " VALUES ('r2', 's1', 'alice', 'soothe', 'Soothe', 'Apply a serum.', 'info',"
            " '[\"mirror\"]', 1, '[]', 'snoozed', ?, ?, ?)",
            (v5(NOW + DAY), v5(NOW - DAY), v5(NOW - 2 * DAY)),
        )
        conn.execute(
            "INSERT INTO outbox (key, channel, target, payload, reminder_id, profile, not_before,"
            " created_at, status) VALUES ('r1:mirror', 'mirror', 'needlecare/mirror/hall/notify',"
            " '{}', 'r1', 'alice', ?, ?, 'pending')",
            (v5(NOW), v5(NOW)),
        )
        conn.execute("COMMIT")


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in MOMENTS}  # noqa: S608


def plans(store: SqliteStore, calls: list[Callable[[], Any]]) -> list[tuple[str, str]]:
    """Each statement the calls really ran, with its query plan."""
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    for call in calls:
        call()
    store._conn.set_trace_callback(None)
    explained = []
    for sql in statements:
        rows = store._conn.execute(f"EXPLAIN QUERY PLAN {sql}")
        explained.append((sql, " | ".join(str(row[3]) for row in rows)))
    return explained


@pytest.fixture
def migrated(tmp_path: Path) -> tuple[SqliteStore, dict[str, int]]:
    path = tmp_path / "needlecare.db"
    schema_5_store(path)
    with closing(sqlite3.connect(path)) as conn:
        before = counts(conn)
    return SqliteStore.open(path, now=NOW), before


class TestMigration6:
    def test_every_row_survives_and_reads_back_the_same(
        self, migrated: tuple[SqliteStore, dict[str, int]]
    ) -> None:
        store, before = migrated
        assert before == counts(store._conn)
        assert 6 == store._conn.execute("PRAGMA user_version").fetchone()[0]
        assert 1 == len(list(store.path.parent.glob("needlecare.db.bak-v5-*")))
        checks = store.skin_checks("alice")
        assert SkinCheckRecord("sc0", "alice", NOW, 0, None) == checks[-1]
        assert SkinCheckRecord("sc299", "alice", NOW - 299 * DAY, 299 % 50, None) == checks[0]
        assert ProductRecord("pa0", "alice", NOW, "serum", ("niacinamide",)) == store.products()[-1]
        letter = DeadLetter(NOW, "needlecare/device/pen1/event", "{x", 2, "bad", id=1)
        assert letter == store.dead_letters()[0]
        [session] = store.sessions()
        assert (NOW - DAY, EXACT - DAY) == (session.started_at, session.ended_at)
        reminder = store.reminders.get("r1")
        assert reminder is not None
        assert (ReminderStatus.SENT, NOW + DAY, EXACT - DAY) == (
            reminder.status,
            reminder.expires_at,
            reminder.delivered_at,
        )
        snoozed = store.reminders.get("r2")
        assert snoozed is not None
        assert (NOW - DAY, NOW - DAY) == (reminder.planned_at, reminder.due_at)
        assert (NOW - DAY, NOW + DAY) == (snoozed.planned_at, snoozed.due_at)
        assert [NOW] == [item.not_before for item in store.outbox.listing("pending")]
        store.close()

    def test_moments_are_compact_and_the_keyed_tables_have_no_second_copy(
        self, migrated: tuple[SqliteStore, dict[str, int]]
    ) -> None:
        store, _ = migrated
        sql = store._conn.execute
        for table, columns in MOMENTS.items():
            for column in columns:
                found = sql(f"SELECT {column} FROM {table} WHERE {column} LIKE '%+00:00'")  # noqa: S608
                assert [] == found.fetchall(), (table, column)
        assert [("2027-03-01T19:05:07.250000", 80)] == [
            tuple(row) for row in sql("SELECT last_seen_at, battery_pct FROM devices")
        ]
        # planned_at only where it is not the due time.
        planned = sql("SELECT id, planned_at FROM reminders WHERE planned_at IS NOT NULL")
        assert [("r2", "2027-02-28T19:05:07")] == [tuple(row) for row in planned]
        names = {row[0] for row in sql("SELECT name FROM sqlite_master")}
        gone = {"sqlite_autoindex_skin_checks_1", "sqlite_autoindex_products_applied_1"}
        assert set() == (gone | {"reminders_open", "sessions_profile"}) & names
        kept = {"reminders_due", "reminders_check", "reminders_session", "reminders_expiry"}
        assert kept <= names
        # Packed by the VACUUM after the rewrite, and still able to shrink.
        assert (0, 2) == (
            sql("PRAGMA freelist_count").fetchone()[0],
            sql("PRAGMA auto_vacuum").fetchone()[0],
        )
        store.close()

    def test_the_event_lookups_still_seek_the_index(
        self, migrated: tuple[SqliteStore, dict[str, int]]
    ) -> None:
        store, _ = migrated
        start = (NOW - DAY).replace(hour=0, minute=0, second=0)
        assert EXACT == store.last_event_at("alice", "cleansed")
        assert store.has_heartbeat_between("alice", "pen2", start, start + DAY)
        assert not store.has_heartbeat_between("alice", "pen3", start, start + DAY)
        explained = plans(
            store,
            [
                lambda: store.last_event_at("alice", "cleansed"),
                lambda: store.has_heartbeat_between("alice", "pen1", start, start + DAY),
                lambda: store.reminders.next_expiry_after(NOW),
                lambda: store.reminders.delivered("alice", NOW),
                lambda: store.reminders.due(NOW),
                lambda: store.reminders.for_session("s1"),
                lambda: store.outbox.ready(NOW, ("mirror",)),
                lambda: store.last_treated_session("alice", exclude=None),
                lambda: store.latest_session("pen1"),
                lambda: store.has_event("sc1"),
            ],
        )
        for sql, plan in explained:
            assert "SCAN" not in plan.replace("SCAN outbox USING INDEX", ""), (sql, plan)
        assert "events_profile_type" in explained[0][1]
        assert "events_profile_type" in explained[1][1]
        store.close()

    def test_a_type_outside_the_index_is_still_found(
        self, migrated: tuple[SqliteStore, dict[str, int]]
    ) -> None:
        """The partial index holds heartbeats and cleansings; other types are read by a scan."""
        store, _ = migrated
        assert NOW == store.last_event_at("alice", "skin_check")
        assert store.last_event_at("bob", "skin_check") is None
        store.close()
