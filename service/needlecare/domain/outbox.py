"""Outbound deliveries as data: what to send where, and not before when."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One delivery. ``key`` is its idempotency key: the same key is never sent twice."""

    key: str
    channel: str
    target: str
    payload: str
    not_before: datetime
    created_at: datetime
    reminder_id: str | None = None
    profile: str | None = None
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None
    id: int | None = None
