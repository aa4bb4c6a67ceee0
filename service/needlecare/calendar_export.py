"""Next-session windows as iCalendar (RFC 5545) events, one per treated session.

Each event's UID is derived from its session, so importing the file again (or a
newer one) updates events instead of duplicating them. A window given its
profile's time zone is written as an all-day event, from the local date it opens
to the local date it closes (inclusive): a window is a span of days, not a
two-week appointment that starts at the minute the last session ended.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from needlecare import __version__

_LIMIT = 75  # octets per line before folding (RFC 5545 §3.1)


@dataclass(frozen=True, slots=True)
class WindowEvent:
    """One next-session window."""

    uid: str
    summary: str
    description: str
    start: datetime
    end: datetime
    zone: tzinfo | None = None  # set: an all-day event in this zone's dates


def _date(day: date) -> str:
    return day.strftime("%Y%m%d")


def _span(event: WindowEvent) -> list[str]:
    if event.zone is None:
        return [f"DTSTART:{_stamp(event.start)}", f"DTEND:{_stamp(event.end)}"]
    first = event.start.astimezone(event.zone).date()
    last = event.end.astimezone(event.zone).date()
    # DTEND of an all-day event is exclusive: the day after the window's last day.
    return [
        f"DTSTART;VALUE=DATE:{_date(first)}",
        f"DTEND;VALUE=DATE:{_date(max(last, first) + timedelta(days=1))}",
    ]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _fold(line: str) -> list[str]:
    """Split a content line into chunks of at most 75 octets, never inside a character."""
    chunks: list[str] = []
    current = ""
    for char in line:
        limit = _LIMIT if not chunks else _LIMIT - 1  # continuation lines start with a space
        if len((current + char).encode()) > limit:
            chunks.append(current)
            current = ""
        current += char
    chunks.append(current)
    return [chunks[0], *(" " + chunk for chunk in chunks[1:])]


def to_ics(events: Iterable[WindowEvent], *, now: datetime) -> str:
    """A VCALENDAR document with CRLF line endings."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:-//Needlecare//Needlecare {__version__}//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ]
    for event in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{event.uid}",
            f"DTSTAMP:{_stamp(now)}",
            *_span(event),
            f"SUMMARY:{_escape(event.summary)}",
            f"DESCRIPTION:{_escape(event.description)}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(part + "\r\n" for line in lines for part in _fold(line))
