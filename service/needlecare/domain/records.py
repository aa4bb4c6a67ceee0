"""Facts Needlecare keeps besides sessions: accepted events, readings, rejects."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An accepted inbound event, as stored for idempotency and export."""

    event_id: str
    source: str
    source_id: str
    type: str
    profile: str | None
    occurred_at: datetime
    received_at: datetime
    payload: str


@dataclass(frozen=True, slots=True)
class SkinCheckRecord:
    """A redness reading from the mirror."""

    event_id: str
    profile: str
    checked_at: datetime
    redness: int
    note: str | None


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """A product that went on the skin, with its ingredients as reported."""

    event_id: str
    profile: str
    applied_at: datetime
    product: str
    ingredients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    """A device's latest sign of life."""

    device_id: str
    last_seen_at: datetime
    battery_pct: int | None = None
    cartridge_uses: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An inbound message that was rejected, with the reason."""

    received_at: datetime
    topic: str
    payload_excerpt: str
    payload_size: int
    reason: str
    id: int | None = None


EXCERPT_BYTES = 512


def excerpt(payload: bytes) -> str:
    """The first bytes of a payload as printable text, for a dead letter."""
    head = payload[:EXCERPT_BYTES].decode("utf-8", errors="backslashreplace")
    return head.replace("\x00", "\\x00")
