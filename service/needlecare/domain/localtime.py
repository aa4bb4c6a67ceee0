"""Local wall-clock time → UTC instants, correct across daylight-saving changes.

A prompt planned for 20:00 local stays at 20:00 local (PRODUCT §3), so its UTC
instant moves by an hour when a DST change falls in between. Every function
returns aware UTC datetimes.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_RESOLUTION: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """Local wall-clock hours in which voice prompts wait; may cross midnight."""

    start: time
    end: time

    def contains(self, wall: time) -> bool:
        """Whether wall-clock ``wall`` is quiet: start inclusive, end exclusive."""
        if self.start <= self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


def local_datetime(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant when the wall clock in ``zone`` shows ``at`` on ``day``.

    A wall time skipped by a spring-forward gap moves to the first instant after
    the gap; a repeated (fall-back) wall time takes its first occurrence.
    """
    return _wall_instant(datetime.combine(day, at.replace(tzinfo=None)), zone, fold=0)


def _wall_instant(naive: datetime, zone: ZoneInfo, *, fold: int) -> datetime:
    instant = naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    return _gap_end(naive, zone)


def _gap_end(naive: datetime, zone: ZoneInfo) -> datetime:
    """The transition that skipped ``naive``: the first instant after the gap.

    Inside a gap, fold=1 reads the wall time with the offset after the change (an
    instant before it) and fold=0 with the offset before (an instant after it), so
    the transition lies between; transitions are whole seconds, bisection finds it.
    """
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    after = high.astimezone(zone).utcoffset()
    while high - low > _RESOLUTION:
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def in_quiet_hours(moment: datetime, window: QuietWindow, zone: ZoneInfo) -> bool:
    """Whether ``moment`` falls in the quiet hours by the wall clock of ``zone``."""
    return window.contains(moment.astimezone(zone).time().replace(tzinfo=None))


def quiet_hours_end(moment: datetime, window: QuietWindow, zone: ZoneInfo) -> datetime:
    """``moment`` (in UTC) outside quiet hours, else the end of the current quiet period."""
    if not in_quiet_hours(moment, window, zone):
        return moment.astimezone(UTC)
    local = moment.astimezone(zone)
    end_day = local.date()
    if window.start > window.end and local.time() >= window.start:
        end_day += timedelta(days=1)
    naive_end = datetime.combine(end_day, window.end)
    end = _wall_instant(naive_end, zone, fold=0)
    if end <= moment:
        # ``moment`` is in the repeated hour after a fall-back and so is the end:
        # the end is its second occurrence.
        end = _wall_instant(naive_end, zone, fold=1)
    return end


def next_local_midnight(moment: datetime, zone: ZoneInfo) -> datetime:
    """The next start of a local calendar day after ``moment``, in UTC."""
    tomorrow = moment.astimezone(zone).date() + timedelta(days=1)
    return local_datetime(tomorrow, time(0), zone)


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar date in ``zone`` at ``moment``."""
    return moment.astimezone(zone).date()


def human_local(moment: datetime, zone: ZoneInfo) -> str:
    """``moment`` as people read it on a mirror, e.g. "Thu 5 Mar, 20:00".

    Fixed English names: locale-dependent ``%a``/``%b`` would make output depend on
    the process environment.
    """
    local = moment.astimezone(zone)
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}, {local:%H:%M}"
