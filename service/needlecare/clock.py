"""The one place that reads the wall clock; everything else is handed a Clock."""

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Source of the current time, always timezone-aware UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)  # noqa: TID251 - the single sanctioned wall-clock read
