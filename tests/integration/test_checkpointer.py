"""Checkpoints off the core thread: the writer's commits no longer pay for them."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from needlecare.domain.records import EventRecord
from needlecare_integrations.store import SAFETY_NET_PAGES, Checkpointer, SqliteStore
from support.daemon import wait_until

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 19, 5, 7, tzinfo=UTC)
PAGE = 4096
WAL_HEADER, FRAME_HEADER = 32, 24
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
    opened.set_autocheckpoint(SAFETY_NET_PAGES)
    yield opened
    opened.close()


def write(store: SqliteStore, start: int, count: int, per_commit: int = 50) -> None:
    for first in range(start, start + count, per_commit):
        with store.transaction():
            for n in range(first, first + per_commit):
                store.add_event(replace(EVENT, event_id=f"e{n}"))


def wal_frames(path: Path) -> int:
    """Frames the log file has room for: it is reused from the start, never shrunk."""
    size = path.with_name(path.name + "-wal").stat().st_size
    return (size - WAL_HEADER) // (PAGE + FRAME_HEADER)


def frames_since_reset(path: Path) -> int:
    """Frames written since the log last restarted (a PASSIVE checkpoint reports them)."""
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


class TestCheckpointer:
    def test_the_writer_no_longer_checkpoints_at_sqlites_default(self, store: SqliteStore) -> None:
        """With the default (1,000 pages) the log would restart and never pass that size."""
        write(store, 0, 1500)
        assert 1400 < wal_frames(store.path) < SAFETY_NET_PAGES

    def test_a_poke_checkpoints_and_the_log_restarts(self, store: SqliteStore) -> None:
        write(store, 0, 1500)
        checkpointer = Checkpointer(store.path, pause_s=0.0)
        checkpointer.start()
        try:
            checkpointer.poke()
            wait_until(lambda: checkpointer.completed >= 1, what="a checkpoint")
            write(store, 1500, 50)  # the next commit starts the log over
            assert frames_since_reset(store.path) < 100
            with closing(sqlite3.connect(store.path)) as conn:
                assert 1550 == conn.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            checkpointer.stop()

    def test_the_safety_net_still_bounds_the_log(self, store: SqliteStore) -> None:
        """No checkpointer at all (it failed to start): the writer checkpoints at 4,000 pages."""
        write(store, 0, 6000, per_commit=200)
        assert wal_frames(store.path) < SAFETY_NET_PAGES + 300
