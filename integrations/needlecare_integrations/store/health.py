"""The figures behind the bridge's diagnostic entities, read from the store.

A reader on its own read-only connection: it sees what the daemon's turns have
committed (WAL), takes no write lock, and runs a handful of indexed aggregates,
only when the daemon's health tracker asks (after a write, at most every few
seconds).
"""

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from needlecare.app.health import DeviceHealth, HealthFigures
from needlecare.app.ports import StoreUnavailableError
from needlecare_integrations.store.timestamps import from_db


def _moment(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


class StoreHealthReader:
    """Implements ``needlecare.app.health.HealthReader`` on the store's file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(
                f"file:{self._path}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA busy_timeout = 5000")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def health(self, devices: Sequence[str], channels: tuple[str, ...]) -> HealthFigures:
        try:
            return self._read(devices, channels)
        except sqlite3.Error as error:
            self.close()  # a fresh connection next time
            raise StoreUnavailableError(f"store {self._path}: {error}") from error

    def _read(self, devices: Sequence[str], channels: tuple[str, ...]) -> HealthFigures:
        conn = self._connection()
        marks = ", ".join("?" for _ in channels)
        conn.execute("BEGIN")  # one snapshot for every figure
        try:
            dead, latest = conn.execute(
                "SELECT count(*), (SELECT reason FROM dead_letters ORDER BY id DESC LIMIT 1)"
                " FROM dead_letters"
            ).fetchone()
            (backlog,) = conn.execute(
                f"SELECT count(*) FROM outbox WHERE status = 'pending'"  # noqa: S608 - marks only
                f" AND channel IN ({marks})",
                channels,
            ).fetchone()
            # The newest row by primary key: one seek however long the journal grows.
            last_event = conn.execute(
                "SELECT received_at FROM events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            rows = {
                row[0]: row
                for row in conn.execute(
                    f"SELECT device_id, last_seen_at, battery_pct FROM devices"  # noqa: S608
                    f" WHERE device_id IN ({', '.join('?' for _ in devices)})",
                    tuple(devices),
                )
            }
        finally:
            conn.execute("COMMIT")
        return HealthFigures(
            dead_letters=int(dead),
            latest_dead_letter=latest,
            outbox_backlog=int(backlog),
            last_event_at=None if last_event is None else _moment(last_event[0]),
            devices=tuple(
                DeviceHealth(
                    device,
                    _moment(rows[device][1]) if device in rows else None,
                    rows[device][2] if device in rows else None,
                )
                for device in devices
            ),
        )
