"""The bridge's health topic: read after a change, at most every few seconds, sent on change."""

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from needlecare import __version__
from needlecare.app.health import DeviceHealth, Health, HealthFigures, health_json
from needlecare.app.ports import StoreUnavailableError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIGURES = HealthFigures(
    dead_letters=2,
    latest_dead_letter="not JSON",
    outbox_backlog=1,
    last_event_at=T0,
    devices=(DeviceHealth("pen1", T0, 81), DeviceHealth("pen2", None, None)),
)


class FakeReader:
    """Returns the figures it holds and counts the reads."""

    def __init__(self) -> None:
        self.figures = FIGURES
        self.reads = 0

    def health(self, devices: Sequence[str], channels: tuple[str, ...]) -> HealthFigures:
        self.reads += 1
        return self.figures


def tracker(reader: FakeReader) -> Health:
    return Health(reader, ["pen1", "pen2"], ("dashboard",), min_interval=timedelta(seconds=3))


class TestHealthJson:
    def test_payload_fields(self) -> None:
        """Counts, the latest reason, ISO times, the version and each configured device."""
        expected = {
            "dead_letters": 2,
            "latest_dead_letter": "not JSON",
            "outbox_backlog": 1,
            "last_event_at": "2026-03-01T12:00:00+00:00",
            "version": __version__,
            "devices": {
                "pen1": {"last_heartbeat": "2026-03-01T12:00:00+00:00", "battery_pct": 81},
                "pen2": {"last_heartbeat": None, "battery_pct": None},
            },
        }
        assert expected == health_json(FIGURES)


class TestHealth:
    def test_first_update_publishes(self) -> None:
        """A new tracker is stale: the first turn reads and publishes."""
        reader = FakeReader()
        health = tracker(reader)
        payload = health.update(T0)
        assert payload is not None
        assert 2 == json.loads(payload)["dead_letters"]
        assert 1 == reader.reads

    def test_nothing_changed_means_no_read_and_no_wake(self) -> None:
        """Without a write to the store there is no read, no payload and no wake-up."""
        reader = FakeReader()
        health = tracker(reader)
        health.mark_published(health.update(T0) or b"")
        assert (None, None) == (health.update(T0 + timedelta(hours=1)), health.next_wake())
        assert 1 == reader.reads

    def test_a_burst_of_changes_is_read_once_per_interval(self) -> None:
        """Changes within the interval wait for one read at its end."""
        reader = FakeReader()
        health = tracker(reader)
        health.mark_published(health.update(T0) or b"")
        reader.figures = replace(FIGURES, dead_letters=3)
        for seconds in (0.5, 1.0, 2.9):
            health.changed()
            assert health.update(T0 + timedelta(seconds=seconds)) is None
        assert T0 + timedelta(seconds=3) == health.next_wake()
        payload = health.update(T0 + timedelta(seconds=3))
        assert payload is not None
        assert 3 == json.loads(payload)["dead_letters"]
        assert 2 == reader.reads

    def test_a_change_that_leaves_the_figures_alone_is_not_published(self) -> None:
        """A write that does not move any figure (say, a reminder acked) sends nothing."""
        reader = FakeReader()
        health = tracker(reader)
        health.mark_published(health.update(T0) or b"")
        health.changed()
        assert health.update(T0 + timedelta(seconds=10)) is None
        assert health.next_wake() is None

    def test_forget_publishes_again(self) -> None:
        """After a reconnect the same payload goes out again (the broker may have lost it)."""
        reader = FakeReader()
        health = tracker(reader)
        first = health.update(T0)
        health.mark_published(first or b"")
        health.forget()
        assert first == health.update(T0 + timedelta(seconds=5))

    def test_a_failed_read_is_retried_after_the_interval_not_at_once(self) -> None:
        """A store error leaves the reading stale, with its next try an interval away."""

        class BrokenReader(FakeReader):
            def health(self, devices: Sequence[str], channels: tuple[str, ...]) -> HealthFigures:
                self.reads += 1
                raise StoreUnavailableError("disk I/O error")

        reader = BrokenReader()
        health = tracker(reader)
        with pytest.raises(StoreUnavailableError):
            health.update(T0)
        assert T0 + timedelta(seconds=3) == health.next_wake()
        assert health.update(T0 + timedelta(seconds=1)) is None
        assert 1 == reader.reads
