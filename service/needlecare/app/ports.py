"""What the application needs from the outside, as small Protocols.

Adapters in ``needlecare_integrations`` implement these; unit tests use fakes.
"""

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from needlecare.app.inbound import AckToken
from needlecare.domain.outbox import OutboxItem
from needlecare.domain.records import (
    DeadLetter,
    DeviceSeen,
    EventRecord,
    ProductRecord,
    SkinCheckRecord,
)
from needlecare.domain.reminders import Reminder
from needlecare.domain.sessions import Session


class StoreUnavailableError(RuntimeError):
    """The journal cannot be written right now (disk full, read-only file...).

    Nothing in the failed transaction was kept; the caller must not acknowledge
    the messages it was recording, and should retry later.
    """


class PublishRefusedError(RuntimeError):
    """The broker connection cannot take another publish now (its client's queue is full).

    Nothing was queued; the caller keeps the message and tries again later.
    """


class JournalStore(Protocol):
    """The durable journal: events, sessions, readings and dead letters."""

    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside commit together, or not at all."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """Writes inside are undone alone if the block raises."""
        ...

    def add_event(self, record: EventRecord) -> bool:
        """Store an event; False when its event_id was seen before."""
        ...

    def latest_session(self, device_id: str) -> Session | None: ...

    def session(self, session_id: str) -> Session | None: ...

    def open_sessions(self) -> list[Session]: ...

    def save_session(self, session: Session) -> None: ...

    def touch_device(self, seen: DeviceSeen) -> None: ...

    def add_skin_check(self, record: SkinCheckRecord) -> None: ...

    def add_product(self, record: ProductRecord) -> None: ...

    def add_dead_letter(self, letter: DeadLetter) -> None: ...

    def has_heartbeat_between(
        self, profile: str, device_id: str, start: datetime, end: datetime
    ) -> bool:
        """Whether a heartbeat of the device in [start, end) is kept as an event."""
        ...


class JournalReader(Protocol):
    """Read access for the command line and exports."""

    def sessions(self, profile: str | None = None) -> list[Session]: ...

    def dead_letters(self) -> list[DeadLetter]: ...

    def skin_checks(self, profile: str | None = None) -> list[SkinCheckRecord]: ...

    def iter_events(self) -> Iterator[EventRecord]: ...


class ReminderRepository(Protocol):
    """Reminders by id, due time, profile and session."""

    def save(self, reminder: Reminder) -> None: ...

    def get(self, reminder_id: str) -> Reminder | None: ...

    def due(self, now: datetime, limit: int = 500) -> list[Reminder]: ...

    def escalations_due(self, now: datetime) -> list[Reminder]: ...

    def next_due_at(self) -> datetime | None: ...

    def next_check_at(self) -> datetime | None: ...

    def next_expiry_after(self, now: datetime) -> datetime | None: ...

    def expired_between(self, since: datetime, until: datetime) -> list[Reminder]: ...

    def delivered(
        self, profile: str, now: datetime, kinds: Sequence[str] | None = None
    ) -> list[Reminder]:
        """The profile's open prompts, only of ``kinds`` when given."""
        ...

    def for_session(self, session_id: str) -> list[Reminder]: ...

    def waiting_for_profile(self, profile: str) -> list[Reminder]: ...


class OutboxRepository(Protocol):
    """Deliveries written with the change that caused them, sent afterwards."""

    def add(self, item: OutboxItem) -> bool: ...

    def ready(
        self, now: datetime, channels: tuple[str, ...], limit: int = 200
    ) -> list[OutboxItem]: ...

    def next_not_before(
        self, channels: tuple[str, ...], *, after: datetime | None = None
    ) -> datetime | None: ...

    def oldest_retry(self, channels: tuple[str, ...]) -> OutboxItem | None: ...

    def mark_sent(self, item_id: int, now: datetime) -> None: ...

    def mark_failed(self, item_id: int, error: str, *, retry_at: datetime | None) -> None: ...

    def postpone(self, item_id: int, not_before: datetime) -> None: ...

    def cancel(self, item_id: int) -> None: ...

    def cancel_for_reminder(self, reminder_id: str) -> int: ...


class AftercareStore(Protocol):
    """What aftercare planning and delivery read and write."""

    def transaction(self) -> AbstractContextManager[None]: ...

    @property
    def reminders(self) -> ReminderRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    def last_treated_session(self, profile: str, *, exclude: str | None) -> Session | None:
        """The profile's newest closed session that needs aftercare."""
        ...

    def session(self, session_id: str) -> Session | None:
        """One session by id (a stored plan step's voice text is made from it)."""
        ...

    def last_event_at(self, profile: str, event_type: str) -> datetime | None:
        """When the profile's newest event of this type happened."""
        ...


class CoreStore(JournalStore, AftercareStore, Protocol):
    """What the core loop itself reads and writes besides ingest and aftercare."""

    @property
    def changes(self) -> int:
        """Rows changed through this connection so far: tells whether a turn wrote."""
        ...

    def has_event(self, event_id: str) -> bool: ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


class MessageBus(Protocol):
    """The broker connection: publishes, and acknowledgements of committed messages."""

    @property
    def connected(self) -> threading.Event: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Queue a publish; its message id comes back on PUBACK.

        Raises PublishRefusedError when the message could not be queued.
        """
        ...

    def written(self, within_s: float) -> AbstractContextManager[None]:
        """Publish in the block; on leaving it, wait (at most ``within_s``) for the write."""
        ...

    def ack(self, token: AckToken) -> None: ...

    def ack_all(self, tokens: Sequence[AckToken]) -> None: ...


class WakeUp(Protocol):
    """The one armed wake-up of the core loop."""

    def arm(self, when: datetime | None) -> None: ...


class CheckpointPoke(Protocol):
    """Told after a commit, so the WAL is copied back off the hot path once it is long."""

    def poke(self) -> None: ...
