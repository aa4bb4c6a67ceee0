"""Checkpoints between commits, on a thread of their own, with a real SQLite file."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from needlecare.domain.records import EventRecord
from needlecare_integrations.store import Checkpointer, SqliteStore
from support.daemon import wait_until

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 19, 5, 7, tzinfo=UTC)
EVENT = EventRecord(
    event_id="e",
    source="device",
    source_id="pen1",
    type="heartbeat",
    profile="alice",
    occurred_at=NOW,
    received_at=NOW,
    payload="x" * 3000,  # about one page per event
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore.open(tmp_path / "needlecare.db", now=NOW)
    yield opened
    opened.close()


def write(store: SqliteStore, start: int, count: int, per_commit: int = 50) -> None:
    for first in range(start, start + count, per_commit):
        with store.transaction():
            for n in range(first, first + per_commit):
                store.add_event(replace(EVENT, event_id=f"e{n}"))


def frames_in_log(path: Path) -> int:
    """Frames written since the log last started over (a PASSIVE checkpoint reports them)."""
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


class TestCheckpointer:
    def test_without_it_the_log_keeps_growing_until_sqlites_own_checkpoint(
        self, store: SqliteStore
    ) -> None:
        """The control: 300 pages stay in the log, to be copied inside some later commit."""
        write(store, 0, 300)
        write(store, 300, 50)
        assert frames_in_log(store.path) > 300

    def test_a_poke_checkpoints_and_the_next_commit_starts_the_log_over(
        self, store: SqliteStore
    ) -> None:
        write(store, 0, 300)
        checkpointer = Checkpointer(store.path, pause_s=0.0)
        checkpointer.start()
        try:
            checkpointer.poke()
            wait_until(lambda: checkpointer.completed >= 1, what="a checkpoint")
            write(store, 300, 50)
            assert frames_in_log(store.path) < 100
            with closing(sqlite3.connect(store.path)) as conn:
                assert 350 == conn.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            checkpointer.stop()

    def test_the_frames_waiting_are_read_from_the_log_index(self, store: SqliteStore) -> None:
        """What poke() counts is what SQLite reports: the log's frames not yet copied back."""
        write(store, 0, 150)
        checkpointer = Checkpointer(store.path)
        try:
            waiting = checkpointer._frames_waiting()
            assert waiting is not None
            assert waiting > 150
            assert waiting == frames_in_log(store.path)  # which copies them back
            assert 0 == checkpointer._frames_waiting()
        finally:
            checkpointer.stop()

    def test_a_poke_wakes_it_only_once_the_log_holds_min_frames(self, store: SqliteStore) -> None:
        """Small commits leave it asleep (a heartbeat's page is copied once, later); a long
        log is copied back before SQLite's own bound makes a commit do it."""
        checkpointer = Checkpointer(store.path, pause_s=0.0, min_frames=200)
        checkpointer.start()
        try:
            write(store, 0, 100)
            checkpointer.poke()
            assert not checkpointer._wanted.is_set()
            write(store, 100, 150)
            checkpointer.poke()
            wait_until(lambda: checkpointer.completed >= 1, what="a checkpoint")
            write(store, 250, 50)
            assert frames_in_log(store.path) < 100
            assert 1 == checkpointer.completed
        finally:
            checkpointer.stop()
