"""Rendering for the command line: JSON arrays for programs, tables for people."""

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

import click

from needlecare.domain.records import DeadLetter
from needlecare.domain.reminders import Reminder
from needlecare.domain.sessions import Session

PROGRESS_FROM = 200  # rows; fewer finish before a bar would be seen


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:  # exact types: an Enum member that is also a str goes on
        return value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return record(value)
    return _leaf(value)


def _leaf(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def record(obj: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict (times as RFC 3339).

    Field by field rather than ``dataclasses.asdict``, whose deep copies made
    this most of the time of a JSON listing (a quarter of a second for 2,000 rows).
    """
    if not is_dataclass(obj) or isinstance(obj, type):
        msg = f"not a dataclass instance: {obj!r}"
        raise TypeError(msg)
    return {item.name: _plain(getattr(obj, item.name)) for item in fields(obj)}


def to_json(rows: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps(list(rows), indent=2, ensure_ascii=False)


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """A header, then one line per row; every cell a plain value (see ``csv_cell``)."""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return out.getvalue()


def csv_cell(value: Any) -> str:
    """A spreadsheet-friendly cell: never JSON and never a Python repr.

    Lists are joined with "; ", booleans are ``true``/``false``, nothing is empty,
    whole numbers lose their ``.0``, and an escalation rung reads ``+1800 s: voice``.
    """
    if isinstance(value, list | tuple):
        return "; ".join(csv_cell(item) for item in value)
    if isinstance(value, Mapping):
        if set(value) == {"after_s", "channels"}:
            return f"+{csv_cell(value['after_s'])} s: {', '.join(value['channels'])}"
        return ", ".join(f"{key}={csv_cell(item)}" for key, item in value.items())
    return _scalar_cell(value)


def _scalar_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(_plain(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table; ``(none)`` when there are no rows."""
    if not rows:
        return "(none)"
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def cell(value: object) -> str:
    """A value as people read it; times as ``2026-03-01 20:15 CET`` in their own zone."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z")
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def session_row(session: Session) -> dict[str, Any]:
    """The JSON shape of a session: the keys `sessions --json` documents."""
    return record(session)


def reminder_row(reminder: Reminder) -> dict[str, Any]:
    """The JSON shape of a reminder (`reminders --json`), escalation flattened."""
    row = record(reminder)
    row["escalation"] = [
        {"after_s": e.after.total_seconds(), "channels": [c.value for c in e.channels]}
        for e in reminder.escalation
    ]
    return row


def dead_letter_row(letter: DeadLetter) -> dict[str, Any]:
    return record(letter)


T = TypeVar("T")


def progress(items: Sequence[T], label: str) -> Iterator[T]:
    """Items, with a progress bar on stderr when it is a terminal (never in pipes or logs)."""
    if not sys.stderr.isatty() or len(items) < PROGRESS_FROM:
        yield from items
        return
    with click.progressbar(items, label=label, file=sys.stderr) as bar:
        yield from bar


def printable(text: str, limit: int = 60) -> str:
    """Text safe for a terminal: control characters escaped, long text cut."""
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
