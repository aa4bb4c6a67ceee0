"""The queries every core turn runs stay index seeks however long the history grows."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from needlecare.domain.outbox import OutboxItem
from needlecare.domain.protocol_steps import Channel, Severity
from needlecare.domain.reminders import Reminder, ReminderStatus
from needlecare.domain.sessions import Session, SessionStatus
from needlecare_integrations.store import SqliteStore

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 19, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def reminder(
    rid: str, status: ReminderStatus, expires_at: datetime | None, profile: str = "alice"
) -> Reminder:
    return Reminder(
        id=rid,
        session_id="s1",
        profile=profile,
        kind="soothe",
        title="Soothe",
        message="Apply a calming serum.",
        severity=Severity.INFO,
        channels=(Channel.MIRROR,),
        needs_ack=True,
        escalation=(),
        status=status,
        due_at=NOW - HOUR,
        planned_at=NOW - HOUR,
        created_at=NOW - 2 * HOUR,
        expires_at=expires_at,
        delivered_at=NOW - HOUR,
    )


def closed(sid: str, ended_hours_ago: float, status: SessionStatus) -> Session:
    ended = NOW - timedelta(hours=ended_hours_ago)
    return Session(
        id=sid,
        profile="alice",
        device_id="pen1",
        setting="home",
        status=status,
        started_at=ended - timedelta(minutes=15),
        ended_at=ended,
        last_seen_at=ended,
        duration_s=0 if status is SessionStatus.ABORTED else 900,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore.open(tmp_path / "needlecare.db", now=NOW)
    yield opened
    opened.close()


class TestPerTurnQueries:
    def test_open_prompts_skip_expired_and_answered_ones(self, store: SqliteStore) -> None:
        with store.transaction():
            for n in range(200):  # a long history of prompts nobody answered
                store.reminders.save(reminder(f"old{n}", ReminderStatus.SENT, NOW - HOUR))
            store.reminders.save(reminder("open", ReminderStatus.SENT, NOW + HOUR))
            store.reminders.save(reminder("forever", ReminderStatus.LATE, None))
            store.reminders.save(reminder("acked", ReminderStatus.ACKED, NOW + HOUR))
            store.reminders.save(reminder("bob", ReminderStatus.SENT, NOW + HOUR, "bob"))
        assert ["open", "forever"] == [r.id for r in store.reminders.delivered("alice", NOW)]
        assert NOW + HOUR == store.reminders.next_expiry_after(NOW)
        assert store.reminders.next_expiry_after(NOW + 2 * HOUR) is None

    def test_newest_treated_session_wins(self, store: SqliteStore) -> None:
        with store.transaction():
            for n in range(50):
                store.save_session(closed(f"old{n}", 100 + n, SessionStatus.COMPLETED))
            store.save_session(closed("newest", 1, SessionStatus.COMPLETED))
            store.save_session(closed("aborted", 0.5, SessionStatus.ABORTED))  # nothing needled
        found = store.last_treated_session("alice", exclude=None)
        assert "newest" == (found.id if found else None)
        found = store.last_treated_session("alice", exclude="newest")
        assert "old0" == (found.id if found else None)

    def test_ready_outbox_items_come_in_insertion_order(self, store: SqliteStore) -> None:
        with store.transaction():
            for n in range(5):
                item = OutboxItem(
                    key=f"k{n}",
                    channel="mirror",
                    target="needlecare/mirror/hall/notify",
                    payload="{}",
                    not_before=NOW - timedelta(minutes=n),
                    created_at=NOW,
                )
                store.outbox.add(item)
            store.outbox.mark_sent(1, NOW)
        assert ["k1", "k2", "k3", "k4"] == [i.key for i in store.outbox.ready(NOW, ("mirror",))]

    def test_each_reads_an_index_not_the_table(self, store: SqliteStore) -> None:
        """The statements the store really runs, as traced, explained one by one."""
        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)
        store.reminders.next_expiry_after(NOW)
        store.reminders.delivered("alice", NOW)
        store.outbox.ready(NOW, ("mirror", "voice"))
        store.last_treated_session("alice", exclude="s1")
        store._conn.set_trace_callback(None)
        assert 4 == len(statements)
        with closing(sqlite3.connect(store.path)) as conn:
            for sql in statements:
                found = " | ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
                assert "SCAN" not in found.replace("SCAN outbox USING INDEX", ""), (sql, found)
                assert "TEMP B-TREE" not in found, (sql, found)
