"""A batch is recorded in one go; a message that trips over a bug is isolated."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from needlecare.app.aftercare import Aftercare
from needlecare.app.inbound import InboundMessage
from needlecare.app.ingest import Ingest
from needlecare.config import NeedlecareConfig
from needlecare.domain.protocol import build_protocols
from needlecare.domain.topics import Topics
from needlecare_integrations.store import SqliteStore

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
CONFIG = NeedlecareConfig.model_validate(
    {"profiles": {"alice": {"timezone": "Europe/Berlin"}}, "devices": {"pen1": {"owner": "alice"}}}
)


def product(event_id: str, name: str) -> InboundMessage:
    body = {"event_id": event_id, "type": "product_applied", "profile": "alice", "product": name}
    return InboundMessage("needlecare/mirror/hallway/event", json.dumps(body).encode(), NOW)


class ExplodingAftercare(Aftercare):
    """Aftercare with a bug that fires for one product name."""

    def product_applied(self, **kwargs: object) -> None:  # type: ignore[override]
        if kwargs["product"] == "boom":
            raise RuntimeError("a bug")
        super().product_applied(**kwargs)  # type: ignore[arg-type]


def pipeline(tmp_path: Path, aftercare: type[Aftercare] = Aftercare) -> tuple[SqliteStore, Ingest]:
    """A real store with the ingest and aftercare the daemon builds around it."""
    store = SqliteStore.open(tmp_path / "x.db", now=NOW)
    care = aftercare(store=store, config=CONFIG, topics=Topics(), protocols=build_protocols(None))
    return store, Ingest(store=store, config=CONFIG, topics=Topics(), aftercare=care)


class TestBatch:
    def test_a_bug_in_one_message_dead_letters_it_and_keeps_the_rest(self, tmp_path: Path) -> None:
        """The batch is replayed one savepoint each: two products land, one is dead-lettered."""
        store, ingest = pipeline(tmp_path, ExplodingAftercare)
        ingest.handle([product("a", "serum"), product("b", "boom"), product("c", "cream")], NOW)
        assert ["a", "c"] == [e.event_id for e in store.iter_events()]
        [letter] = store.dead_letters()
        assert "internal error: RuntimeError: a bug" == letter.reason
        assert 2 == store.count("products_applied")
        store.close()

    def test_device_sightings_are_written_once_per_batch_with_the_latest(
        self, tmp_path: Path
    ) -> None:
        """Several heartbeats in a batch leave the latest time and the last known readings."""
        store, ingest = pipeline(tmp_path)
        first = {"event_id": "h1", "type": "heartbeat", "battery_pct": 80}
        beats = [
            {**first, "timestamp": "2026-03-01T20:00:00Z"},
            {"event_id": "h2", "type": "heartbeat", "timestamp": "2026-03-01T20:05:00Z"},
        ]
        ingest.handle(
            [
                InboundMessage("needlecare/device/pen1/event", json.dumps(b).encode(), NOW)
                for b in beats
            ],
            NOW,
        )
        row = store._conn.execute(
            "SELECT last_seen_at, battery_pct FROM devices WHERE device_id = 'pen1'"
        ).fetchone()
        assert ("2026-03-01T20:05:00", 80) == (row[0], row[1])  # UTC, as the store writes it
        store.close()

    def test_heartbeats_move_the_open_session_and_the_timeout_ends_it_there(
        self, tmp_path: Path
    ) -> None:
        """Last-seen refreshes are written at the batch end; an inferred end uses them."""
        store, ingest = pipeline(tmp_path)
        events = [
            {"event_id": "s", "type": "session_started", "timestamp": "2026-03-01T20:00:00Z"},
            {"event_id": "h1", "type": "heartbeat", "timestamp": "2026-03-01T20:10:00Z"},
            {"event_id": "h2", "type": "heartbeat", "timestamp": "2026-03-01T20:20:00Z"},
        ]
        topic = "needlecare/device/pen1/event"
        ingest.handle([InboundMessage(topic, json.dumps(e).encode(), NOW) for e in events], NOW)
        [session] = store.open_sessions()
        assert datetime(2026, 3, 1, 20, 20, tzinfo=UTC) == session.last_seen_at
        with store.transaction():
            ingest.expire_sessions(datetime(2026, 3, 1, 23, 0, tzinfo=UTC))
        [closed] = store.sessions()
        assert ("end_inferred", datetime(2026, 3, 1, 20, 20, tzinfo=UTC)) == (
            closed.status.value,
            closed.ended_at,
        )
        ended = {"event_id": "e", "type": "session_ended", "timestamp": "2026-03-01T20:30:00Z"}
        ingest.handle([InboundMessage(topic, json.dumps(ended).encode(), NOW)], NOW)
        [done] = store.sessions()
        assert ("completed", datetime(2026, 3, 1, 20, 30, tzinfo=UTC)) == (
            done.status.value,
            done.ended_at,
        )
        store.close()

    def test_beats_in_a_batch_fold_into_the_session_before_its_next_event(
        self, tmp_path: Path
    ) -> None:
        """Out-of-order beats leave the newest; a new start in the same batch ends the old
        session at its last beat, as if each beat had been applied on its own."""
        store, ingest = pipeline(tmp_path)
        events = [
            {"event_id": "s1", "type": "session_started", "timestamp": "2026-03-01T20:00:00Z"},
            {"event_id": "h1", "type": "heartbeat", "timestamp": "2026-03-01T20:10:00Z"},
            {"event_id": "h2", "type": "heartbeat", "timestamp": "2026-03-01T20:25:00Z"},
            {"event_id": "h3", "type": "heartbeat", "timestamp": "2026-03-01T20:15:00Z"},
            {"event_id": "s2", "type": "session_started", "timestamp": "2026-03-01T20:40:00Z"},
            {"event_id": "h4", "type": "heartbeat", "timestamp": "2026-03-01T20:45:00Z"},
        ]
        topic = "needlecare/device/pen1/event"
        ingest.handle([InboundMessage(topic, json.dumps(e).encode(), NOW) for e in events], NOW)
        first, second = sorted(store.sessions(), key=lambda s: s.last_seen_at)
        at = lambda minute: datetime(2026, 3, 1, 20, minute, tzinfo=UTC)  # noqa: E731
        assert ("end_inferred", at(25), at(25)) == (
            first.status.value,
            first.ended_at,
            first.last_seen_at,
        )
        assert ("open", at(45)) == (second.status.value, second.last_seen_at)
        # Only the day's first beat is kept as an event; the rest moved state only.
        assert ["s1", "h1", "s2"] == [e.event_id for e in store.iter_events()]
        store.close()
