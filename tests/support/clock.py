"""A clock that only moves when the test says so."""

from datetime import datetime, timedelta


class FakeClock:
    """Implements needlecare.clock.Clock; start it at an aware UTC instant."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the fake clock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError("this clock does not go backwards; build a new one for that")
        self._now = moment

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now


class JumpClock(FakeClock):
    """A fake clock that, unlike FakeClock itself, may be set backwards (a clock jump)."""

    def set(self, moment: datetime) -> None:
        self._now = moment
