"""The bridge's health as one retained JSON topic, read by its diagnostic entities.

Dead letters (count and the latest reason), the Home Assistant outbox backlog, the
last event received, each configured device's last heartbeat and battery, and the
daemon's version. It costs nothing while nothing happens: the core marks it stale
only when a turn wrote to the store, it is read again at most every
``MIN_INTERVAL`` (a burst of events makes one update, not one per event), and it is
published only when the payload differs from the last one. No timer runs when idle.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from needlecare import __version__

MIN_INTERVAL = timedelta(seconds=3)


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    device_id: str
    last_seen_at: datetime | None
    battery_pct: int | None


@dataclass(frozen=True, slots=True)
class HealthFigures:
    dead_letters: int
    latest_dead_letter: str | None
    outbox_backlog: int
    last_event_at: datetime | None
    devices: tuple[DeviceHealth, ...]


class HealthReader(Protocol):
    """Reads the figures from the store (a few indexed aggregates)."""

    def health(self, devices: Sequence[str], channels: tuple[str, ...]) -> HealthFigures: ...


def health_json(figures: HealthFigures, version: str = __version__) -> dict[str, Any]:
    """The payload of ``needlecare/bridge/health``."""

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "dead_letters": figures.dead_letters,
        "latest_dead_letter": figures.latest_dead_letter,
        "outbox_backlog": figures.outbox_backlog,
        "last_event_at": iso(figures.last_event_at),
        "version": version,
        "devices": {
            device.device_id: {
                "last_heartbeat": iso(device.last_seen_at),
                "battery_pct": device.battery_pct,
            }
            for device in figures.devices
        },
    }


@dataclass
class Health:
    """Decides when the health topic is read and published."""

    reader: HealthReader
    devices: Sequence[str]
    channels: tuple[str, ...]
    min_interval: timedelta = MIN_INTERVAL
    stale: bool = True
    read_at: datetime | None = None
    published: bytes | None = field(default=None, repr=False)

    def changed(self) -> None:
        """The store was written: the figures may have changed."""
        self.stale = True

    def forget(self) -> None:
        """After a (re)connect or Home Assistant's birth: publish again."""
        self.published = None
        self.stale = True

    def next_wake(self) -> datetime | None:
        """When a stale reading may be taken; None while nothing changed."""
        if not self.stale:
            return None
        return None if self.read_at is None else self.read_at + self.min_interval

    def update(self, now: datetime) -> bytes | None:
        """The payload to publish now, or None (nothing changed, or too soon)."""
        if not self.stale or (self.read_at is not None and now < self.read_at + self.min_interval):
            return None
        self.read_at = now  # first: a failed read waits out the interval too
        figures = self.reader.health(self.devices, self.channels)
        self.stale = False
        payload = json.dumps(health_json(figures), sort_keys=True).encode()
        return None if payload == self.published else payload

    def mark_published(self, payload: bytes) -> None:
        self.published = payload
