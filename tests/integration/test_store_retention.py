"""Retention against a real store on a fake clock: what is purged, what is kept forever."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from needlecare.app.aftercare import Aftercare
from needlecare.app.inbound import InboundMessage
from needlecare.app.ingest import Ingest
from needlecare.app.retention import Retention
from needlecare.config import NeedlecareConfig
from needlecare.config.models import RetentionConfig
from needlecare.domain.outbox import OutboxItem
from needlecare.domain.protocol import build_protocols
from needlecare.domain.records import DeadLetter, EventRecord, SkinCheckRecord
from needlecare.domain.topics import Topics
from needlecare_integrations.store import SqliteStore
from needlecare_integrations.store.migrations import migrate
from needlecare_integrations.store.timestamps import to_db
from support.clock import FakeClock

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CONFIG = NeedlecareConfig.model_validate(
    {
        "profiles": {"alice": {"timezone": "Europe/Berlin"}},
        "devices": {"pen1": {"owner": "alice"}, "pen2": {"owner": "alice"}},
    }
)


def event(n: int, at: datetime, kind: str = "presence") -> EventRecord:
    return EventRecord(
        event_id=f"e{n}",
        source="mirror",
        source_id="hallway",
        type=kind,
        profile="alice",
        occurred_at=at,
        received_at=at,
        payload="x" * 400,
    )


def letter(at: datetime, n: int) -> DeadLetter:
    return DeadLetter(
        received_at=at, topic="needlecare/device/x/event", payload_excerpt=f"bad {n}" + "y" * 300,
        payload_size=310, reason="not JSON",
    )  # fmt: skip


def item(n: int, at: datetime) -> OutboxItem:
    return OutboxItem(
        id=None, key=f"k{n}", channel="mqtt", target="needlecare/mirror/hallway/notify",
        payload="{}", reminder_id=None, profile="alice", not_before=at, created_at=at,
    )  # fmt: skip


def step_until_idle(retention: Retention, store: SqliteStore, clock: FakeClock) -> int:
    """Run purge steps the way the core loop does (one per due wake-up); return the count."""
    steps = 0
    while True:
        assert retention.next_at is None or retention.due(clock.now()) or steps == 0
        with store.transaction():
            result = retention.step(clock.now())
        freed = retention.give_back(clock.now())
        steps += 1
        assert retention.next_at is not None
        if retention.next_at - clock.now() > timedelta(seconds=1):
            return steps
        clock.set(retention.next_at)
        assert result.rows + freed > 0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore.open(tmp_path / "needlecare.db", now=START)


class TestEvents:
    def test_old_events_go_in_small_steps_and_the_journal_stays(
        self, store: SqliteStore, clock: FakeClock
    ) -> None:
        """3,000 events a year and a half old go, 500 per step; skin checks stay forever."""
        old = START - timedelta(days=550)
        with store.transaction():
            for n in range(3000):
                store.add_event(event(n, old + timedelta(seconds=n)))
            store.add_skin_check(SkinCheckRecord("e0", "alice", old, 2, "fine"))
            for n in range(3000, 3010):
                store.add_event(event(n, START - timedelta(days=10)))
        retention = Retention(store.retention, RetentionConfig(batch_rows=500))
        steps = step_until_idle(retention, store, clock)
        assert 10 == store.count("events")
        assert 1 == store.count("skin_checks")
        assert steps >= 3000 // 500
        # Nothing left: the next round is an interval away, not a second.
        assert clock.now() + timedelta(hours=1) == retention.next_at

    def test_the_file_gives_the_space_back(self, store: SqliteStore, clock: FakeClock) -> None:
        """After purging, incremental vacuum shrinks the file instead of keeping free pages."""
        old = START - timedelta(days=500)
        with store.transaction():
            for n in range(5000):
                store.add_event(event(n, old))
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        full = store.path.stat().st_size
        retention = Retention(store.retention, RetentionConfig(batch_rows=1000))
        step_until_idle(retention, store, clock)
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert 0 == store.count("events")
        assert store.retention.free_pages() <= 256
        assert store.path.stat().st_size < full / 2


class TestDeadLetters:
    def test_cap_keeps_the_newest_and_counts_the_dropped(
        self, store: SqliteStore, clock: FakeClock
    ) -> None:
        """Cap 100, 250 letters: the newest 100 stay, 150 counted as dropped."""
        with store.transaction():
            for n in range(250):
                store.add_dead_letter(letter(START, n))
        retention = Retention(store.retention, RetentionConfig(dead_letters_max=100))
        with store.transaction():
            retention.step(clock.now())
        kept = store.dead_letters()
        assert 100 == len(kept)
        assert kept[0].payload_excerpt.startswith("bad 150")
        assert 150 == store.retention.dropped_dead_letters()

    def test_a_flood_starts_a_step_at_once(self, store: SqliteStore, clock: FakeClock) -> None:
        """Dead letters piling up make a step due before the interval is over."""
        retention = Retention(store.retention, RetentionConfig(batch_rows=100))
        with store.transaction():
            retention.step(clock.now())
        assert not retention.due(clock.now())
        retention.note_dead_letters(99)
        assert not retention.due(clock.now())
        retention.note_dead_letters(1)
        assert retention.due(clock.now())

    def test_old_letters_go_by_age(self, store: SqliteStore, clock: FakeClock) -> None:
        with store.transaction():
            for n in range(30):
                store.add_dead_letter(letter(START - timedelta(days=100), n))
            store.add_dead_letter(letter(START, 99))
        retention = Retention(store.retention, RetentionConfig(dead_letters_days=90))
        with store.transaction():
            retention.step(clock.now())
        assert ["bad 99"] == [d.payload_excerpt[:6] for d in store.dead_letters()]
        assert 0 == store.retention.dropped_dead_letters()


class TestOutbox:
    def test_sent_items_go_after_a_few_days_pending_ones_never(
        self, store: SqliteStore, clock: FakeClock
    ) -> None:
        with store.transaction():
            for n in range(6):
                store.outbox.add(item(n, START - timedelta(days=10)))
            for listed in store.outbox.listing()[:4]:
                assert listed.id is not None
                store.outbox.mark_sent(listed.id, START - timedelta(days=10 - listed.id))
        retention = Retention(store.retention, RetentionConfig(outbox_days=3))
        with store.transaction():
            result = retention.step(clock.now())
        # Sent 9, 8, 7 and 6 days ago go; the two pending stay, however old.
        assert 4 == result.outbox
        assert ["pending", "pending"] == [i.status.value for i in store.outbox.listing()]


def beat(n: int, device: str, at: datetime, battery: int) -> InboundMessage:
    body = {"event_id": f"hb{device}{n}", "type": "heartbeat", "timestamp": at.isoformat()}
    body["battery_pct"] = battery  # type: ignore[assignment]
    return InboundMessage(f"needlecare/device/{device}/event", json.dumps(body).encode(), at)


class TestHeartbeats:
    def test_one_row_per_device_and_day_and_the_device_state_kept(
        self, store: SqliteStore, clock: FakeClock
    ) -> None:
        """Two devices, a beat every 30 s for three days (4 UTC days): 8 rows, the last readings."""
        care = Aftercare(
            store=store, config=CONFIG, topics=Topics(), protocols=build_protocols(None)
        )
        ingest = Ingest(store=store, config=CONFIG, topics=Topics(), aftercare=care)
        for n in range(3 * 2880):
            at = clock.advance(timedelta(seconds=30))
            batch = [beat(n, "pen1", at, 90 - n // 1000), beat(n, "pen2", at, 50)]
            ingest.handle(batch, at)
            if n == 100:
                # A restart forgets what the process knew: still no second row that day.
                ingest = Ingest(store=store, config=CONFIG, topics=Topics(), aftercare=care)
        rows = store._conn.execute(
            "SELECT source_id, substr(occurred_at, 1, 10) FROM events ORDER BY seq"
        ).fetchall()
        days = ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08"]
        expected = sorted((device, day) for device in ("pen1", "pen2") for day in days)
        assert expected == sorted((row[0], row[1]) for row in rows)
        device = store._conn.execute(
            "SELECT last_seen_at, battery_pct FROM devices WHERE device_id = 'pen1'"
        ).fetchone()
        assert (to_db(clock.now()), 82) == (device[0], device[1])


class TestMigration:
    def test_an_existing_store_is_switched_to_incremental_vacuum_once(self, tmp_path: Path) -> None:
        """A schema-4 file (auto_vacuum NONE) is copied aside, then rewritten by migration 5."""
        path = tmp_path / "old.db"
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            from needlecare_integrations.store.migrations import _migrations  # noqa: PLC0415

            migrate(conn, path, backup=False, now=START, migrations=_migrations()[:4])
            assert 0 == conn.execute("PRAGMA auto_vacuum").fetchone()[0]
        SqliteStore.open(path, now=START).close()
        with closing(sqlite3.connect(path)) as conn:
            assert 2 == conn.execute("PRAGMA auto_vacuum").fetchone()[0]
            assert 5 <= conn.execute("PRAGMA user_version").fetchone()[0]
        assert 1 == len(list(tmp_path.glob("old.db.bak-v4-*")))


class TestHeartbeatsFromBeforeSchema5:
    def test_one_row_per_beat_is_thinned_to_the_first_of_each_day(
        self, store: SqliteStore, clock: FakeClock
    ) -> None:
        """An upgraded store's beat-a-minute rows, two devices: one row per device and day."""
        first = START - timedelta(days=3)
        with store.transaction():
            n = 0
            for minute in range(0, 2 * 24 * 60, 1):
                at = first + timedelta(minutes=minute)
                for device in ("pen1", "pen2"):
                    n += 1
                    store.add_event(
                        EventRecord(f"hb{n}", "device", device, "heartbeat", "alice", at, at, "{}")
                    )
            store.add_event(event(n + 1, first + timedelta(hours=5)))
        retention = Retention(store.retention, RetentionConfig(batch_rows=500))
        step_until_idle(retention, store, clock)
        rows = store._conn.execute(
            "SELECT source_id, occurred_at FROM events WHERE type = 'heartbeat' ORDER BY seq"
        ).fetchall()
        # From 09:00 on the first day to 08:59 two days later: three UTC days.
        midnight = first.replace(hour=0)
        days = [first, midnight + timedelta(days=1), midnight + timedelta(days=2)]
        stamps = [to_db(at) for at in days]
        expected = [(device, stamp) for stamp in stamps for device in ("pen1", "pen2")]
        assert expected == [(r[0], r[1]) for r in rows]
        presence = "SELECT count(*) FROM events WHERE type = 'presence'"
        assert 1 == store._conn.execute(presence).fetchone()[0]
        # Walked once: the next round finds nothing more to do.
        with store.transaction():
            assert 0 == retention.step(clock.now()).heartbeats
