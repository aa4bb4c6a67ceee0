"""What the application needs from the outside, as small Protocols.

Adapters in ``needlecare_integrations`` implement these; unit tests use fakes.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from needlecare.domain.records import (
    DeadLetter,
    DeviceSeen,
    EventRecord,
    ProductRecord,
    SkinCheckRecord,
)
from needlecare.domain.sessions import Session


class StoreUnavailableError(RuntimeError):
    """The journal cannot be written right now (disk full, read-only file...).

    Nothing in the failed transaction was kept; the caller must not acknowledge
    the messages it was recording, and should retry later.
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

    def open_sessions(self) -> list[Session]: ...

    def save_session(self, session: Session) -> None: ...

    def touch_device(self, seen: DeviceSeen) -> None: ...

    def add_skin_check(self, record: SkinCheckRecord) -> None: ...

    def add_product(self, record: ProductRecord) -> None: ...

    def add_dead_letter(self, letter: DeadLetter) -> None: ...


class JournalReader(Protocol):
    """Read access for the command line and exports."""

    def sessions(self, profile: str | None = None) -> list[Session]: ...

    def dead_letters(self) -> list[DeadLetter]: ...

    def skin_checks(self, profile: str | None = None) -> list[SkinCheckRecord]: ...

    def iter_events(self) -> Iterator[EventRecord]: ...
