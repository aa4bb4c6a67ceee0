"""Small HTML helpers: escaped text, local times, durations and tables.

Every value that reaches the page goes through :func:`esc` or one of the
formatters built on it; only the page's own markup is written unescaped.
"""

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Final
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from needlecare.domain.sessions import Session
from needlecare.i18n import Translator, translator

NONE: Final = "&ndash;"
ENGLISH: Final = translator("en")
_BOLD: Final = re.compile(r"\*\*(.+?)\*\*")
_CODE: Final = re.compile(r"`([^`]+)`")


def esc(value: object) -> str:
    """Any value as HTML text, quotes included (safe in attributes too)."""
    return escape(str(value), quote=True)


def markdown_inline(text: str) -> str:
    """``**bold**`` and ```code``` of a one-line Markdown text as HTML, the rest escaped."""
    html = _BOLD.sub(r"<strong>\1</strong>", esc(text))
    return _CODE.sub(r"<code>\1</code>", html)


def local(moment: datetime | None, zone: ZoneInfo, tr: Translator = ENGLISH) -> str:
    """``moment`` as the profile's wall clock, e.g. ``2026-03-01 20:15 CET``.

    Numeric ISO dates read the same in every supported language; the zone's name
    (needed in the repeated hour of a DST change) is the tz database's abbreviation
    in English and Babel's in the other languages (``MESZ``, ``+0200``).
    """
    if moment is None:
        return NONE
    shown = moment.astimezone(zone)
    instant = moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if tr.language == "en":
        text = f"{shown:%Y-%m-%d %H:%M} {shown.tzname()}"
    else:
        text = format_datetime(shown, "yyyy-MM-dd HH:mm z", tzinfo=zone, locale=tr.locale)
    return f'<time datetime="{esc(instant)}">{esc(text)}</time>'


def local_day(moment: datetime, zone: ZoneInfo) -> str:
    """The local calendar date of ``moment``, e.g. ``2026-03-01``."""
    return f"{moment.astimezone(zone):%Y-%m-%d}"


def session_length(session: Session, tr: Translator = ENGLISH) -> str:
    """How long the needle was on the skin: the reported duration, else end minus start."""
    seconds = session.duration_s
    if seconds is None and session.started_at is not None and session.ended_at is not None:
        seconds = int((session.ended_at - session.started_at).total_seconds())
    return NONE if seconds is None else esc(span(timedelta(seconds=seconds), tr))


def span(delta: timedelta, tr: Translator = ENGLISH) -> str:
    """A duration as people say it: ``45 s``, ``15 min``, ``1 h 5 min``, ``3 days``.

    s, min and h are unit symbols in every supported language; days are words.
    """
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return tr.ngettext("{n} day", "{n} days", hours // 24)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    row_classes: Sequence[str] | None = None,
    numeric: frozenset[int] = frozenset(),
) -> str:
    """An HTML table; cells are HTML already, headers plain text, ``numeric`` right-aligned."""
    head = "".join(
        f'<th{_num_class(i, numeric)} scope="col">{esc(h)}</th>' for i, h in enumerate(headers)
    )
    classes = row_classes or [""] * len(rows)
    body = "\n".join(
        f"<tr{_class(css)}>"
        + "".join(f"<td{_num_class(i, numeric)}>{cell}</td>" for i, cell in enumerate(row))
        + "</tr>"
        for row, css in zip(rows, classes, strict=True)
    )
    return (
        f'<div class="table-wrap"><table>\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def _class(css: str) -> str:
    return f' class="{esc(css)}"' if css else ""


def _num_class(index: int, numeric: frozenset[int]) -> str:
    return ' class="num"' if index in numeric else ""
