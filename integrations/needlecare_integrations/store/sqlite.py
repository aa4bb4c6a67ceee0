"""The SQLite journal: WAL mode, one writer connection, durable commits.

The daemon owns the only writing connection; the command line opens the file
read-only, which WAL allows while the daemon writes.
"""

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from needlecare.app.ports import StoreUnavailableError
from needlecare.domain.records import (
    DeadLetter,
    DeviceSeen,
    EventRecord,
    ProductRecord,
    SkinCheckRecord,
)
from needlecare.domain.sessions import Session, SessionStatus, needs_aftercare
from needlecare_integrations.store.migrations import (
    EVENT_INDEX_TERM,
    EVENT_INDEX_TYPES,
    SCHEMA_VERSION,
    MigrationError,
    migrate,
)
from needlecare_integrations.store.reminder_tables import OutboxTable, ReminderTable
from needlecare_integrations.store.retention import RetentionTables
from needlecare_integrations.store.timestamps import from_db, to_db

WAL_PAGES = 500


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message says why."""


def _opt(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


_SESSION_COLUMNS = (
    "id, profile, device_id, setting, status, started_at, ended_at, last_seen_at, source,"
    " needle_depth_mm, zones, session_ref, passes, duration_s"
)


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        profile=row["profile"],
        device_id=row["device_id"],
        setting=row["setting"],
        status=SessionStatus(row["status"]),
        started_at=_opt(row["started_at"]),
        ended_at=_opt(row["ended_at"]),
        last_seen_at=from_db(row["last_seen_at"]),
        source=row["source"],
        needle_depth_mm=row["needle_depth_mm"],
        zones=tuple(json.loads(row["zones"])),
        session_ref=row["session_ref"],
        passes=row["passes"],
        duration_s=row["duration_s"],
    )


_EVENT_COLUMNS = "event_id, source, source_id, type, profile, occurred_at, received_at, payload"


def _event(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        event_id=row["event_id"],
        source=row["source"],
        source_id=row["source_id"],
        type=row["type"],
        profile=row["profile"],
        occurred_at=from_db(row["occurred_at"]),
        received_at=from_db(row["received_at"]),
        payload=row["payload"],
    )


def _check_writable(path: Path) -> None:
    """Fail at start, not on the first event, when the store cannot be written.

    SQLite opens a WAL database read-only without a word when its directory or
    its -wal/-shm files are not writable (e.g. a read-only file system after a
    crash), and such a connection stays read-only. Checked without writing, so
    reopening a store leaves it byte for byte as it was.
    """
    siblings = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    for candidate in [path.parent, path, *siblings]:
        if candidate.exists() and not os.access(candidate, os.W_OK):
            raise OSError(f"{candidate} is not writable")


class SqliteStore:
    """The journal on one SQLite file."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.reminders = ReminderTable(self._run, to_db, from_db)
        self.outbox = OutboxTable(self._run, to_db, from_db)
        self.retention = RetentionTables(self._run, to_db, self._script)

    @classmethod
    def open(cls, path: Path, *, now: datetime, backup: bool = True) -> "SqliteStore":
        """Open for writing, creating and migrating the file as needed."""
        conn: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            # Only a new file takes this at once (and only before WAL mode); an existing
            # one is switched by a VACUUM in migration 5. Freed pages can then go back.
            if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: an acknowledged event must survive a power cut, not only a crash.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA busy_timeout = 5000")
            # The log's bound: half of SQLite's default 1,000 pages, and the file cut back
            # to that after each reset, so the log is at most ~2 MiB of the store's disk
            # (a dead-letter flood left 4.5 MiB of it). The checkpoint thread normally
            # copies pages back long before (store/checkpointer.py).
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_PAGES * 4096}")
            _check_writable(path)
            migrate(conn, path, backup=backup, now=now)
            # A savepoint keeps the pages it changes for a rollback. Past 64 KiB SQLite put
            # them in a new file in /var/tmp (created, unlinked, written), one per turn that
            # planned and delivered a prompt: 80 us more on its way, and card writes. Set
            # after the migrations, so that a VACUUM's copy of the store stays on disk.
            conn.execute("PRAGMA temp_store = MEMORY")
        except (sqlite3.Error, OSError, MigrationError) as error:
            if conn is not None:
                conn.close()
            msg = f"cannot open the store at {path}: {error}"
            raise StoreError(msg) from error
        return cls(conn, path)

    @classmethod
    def open_read_only(cls, path: Path) -> "SqliteStore":
        """Open an existing store for reading (the command line)."""
        if not path.exists():
            msg = f"no store at {path}: start the daemon once, or point store.path at it"
            raise StoreError(msg)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 5000")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as error:
            conn.close()
            msg = f"cannot read the store at {path}: {error}"
            raise StoreError(msg) from error
        if version != SCHEMA_VERSION:
            conn.close()
            msg = f"{path} has schema {version}, this release reads {SCHEMA_VERSION}"
            raise StoreError(msg)
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    @property
    def changes(self) -> int:
        """Rows changed through this connection so far: tells whether a turn wrote."""
        return self._conn.total_changes

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._run("BEGIN IMMEDIATE")
        try:
            yield
            self._run("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full) leaves the transaction open: end it.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._run("SAVEPOINT one_message")
        try:
            yield
        except BaseException:
            self._run("ROLLBACK TO one_message")
            raise
        finally:
            self._run("RELEASE one_message")

    def _run(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.OperationalError as error:
            # Disk full, read-only file, I/O error, lock timeout: none of them is
            # the message's fault, so the caller retries instead of rejecting.
            raise StoreUnavailableError(f"store {self.path}: {error}") from error

    def _script(self, sql: str) -> None:
        try:
            self._conn.executescript(sql)
        except sqlite3.OperationalError as error:
            raise StoreUnavailableError(f"store {self.path}: {error}") from error

    # -- writes (the daemon's single writer) ---------------------------------

    def add_event(self, record: EventRecord) -> bool:
        cursor = self._run(
            "INSERT OR IGNORE INTO events (event_id, source, source_id, type, profile,"
            " occurred_at, received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.event_id,
                record.source,
                record.source_id,
                record.type,
                record.profile,
                to_db(record.occurred_at),
                to_db(record.received_at),
                record.payload,
            ),
        )
        return cursor.rowcount == 1

    def save_session(self, session: Session) -> None:
        values = {
            "id": session.id,
            "profile": session.profile,
            "device_id": session.device_id,
            "setting": session.setting,
            "status": session.status.value,
            "started_at": None if session.started_at is None else to_db(session.started_at),
            "ended_at": None if session.ended_at is None else to_db(session.ended_at),
            "last_seen_at": to_db(session.last_seen_at),
            "source": session.source,
            "needle_depth_mm": session.needle_depth_mm,
            "zones": json.dumps(list(session.zones)),
            "session_ref": session.session_ref,
            "passes": session.passes,
            "duration_s": session.duration_s,
        }
        names = ", ".join(values)
        placeholders = ", ".join(f":{name}" for name in values)
        updates = ", ".join(f"{name} = excluded.{name}" for name in values if name != "id")
        self._run(
            f"INSERT INTO sessions ({names}) VALUES ({placeholders})"  # noqa: S608 - fixed names
            f" ON CONFLICT (id) DO UPDATE SET {updates}",
            values,
        )

    def touch_device(self, seen: DeviceSeen) -> None:
        self._run(
            "INSERT INTO devices (device_id, last_seen_at, battery_pct, cartridge_uses)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET"
            " last_seen_at = max(last_seen_at, excluded.last_seen_at),"
            " battery_pct = coalesce(excluded.battery_pct, battery_pct),"
            " cartridge_uses = coalesce(excluded.cartridge_uses, cartridge_uses)",
            (seen.device_id, to_db(seen.last_seen_at), seen.battery_pct, seen.cartridge_uses),
        )

    def add_skin_check(self, record: SkinCheckRecord) -> None:
        self._run(
            "INSERT INTO skin_checks (event_id, profile, checked_at, redness, note)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                record.event_id,
                record.profile,
                to_db(record.checked_at),
                record.redness,
                record.note,
            ),
        )

    def add_product(self, record: ProductRecord) -> None:
        self._run(
            "INSERT INTO products_applied (event_id, profile, applied_at, product, ingredients)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                record.event_id,
                record.profile,
                to_db(record.applied_at),
                record.product,
                json.dumps(list(record.ingredients)),
            ),
        )

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self._run(
            "INSERT INTO dead_letters (received_at, topic, payload_excerpt, payload_size, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                to_db(letter.received_at),
                letter.topic,
                letter.payload_excerpt,
                letter.payload_size,
                letter.reason,
            ),
        )

    # -- reads ---------------------------------------------------------------

    def latest_session(self, device_id: str) -> Session | None:
        row = self._run(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE device_id = ?"  # noqa: S608
            " ORDER BY seq DESC LIMIT 1",
            (device_id,),
        ).fetchone()
        return None if row is None else _session(row)

    def session(self, session_id: str) -> Session | None:
        row = self._run(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?",  # noqa: S608
            (session_id,),
        ).fetchone()
        return None if row is None else _session(row)

    def open_sessions(self) -> list[Session]:
        rows = self._run(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE status = 'open' ORDER BY seq"  # noqa: S608
        )
        return [_session(row) for row in rows]

    def sessions(self, profile: str | None = None) -> list[Session]:
        rows = self._run(
            f"SELECT {_SESSION_COLUMNS} FROM sessions"  # noqa: S608
            " WHERE :profile IS NULL OR profile = :profile ORDER BY seq",
            {"profile": profile},
        )
        return [_session(row) for row in rows]

    def recent_sessions(self, profile: str | None, limit: int) -> list[Session]:
        """The ``limit`` most recently recorded sessions, newest first (one index walk)."""
        rows = self._run(
            f"SELECT {_SESSION_COLUMNS} FROM sessions"  # noqa: S608
            " WHERE :profile IS NULL OR profile = :profile ORDER BY seq DESC LIMIT :limit",
            {"profile": profile, "limit": limit},
        )
        return [_session(row) for row in rows]

    def dead_letters(self) -> list[DeadLetter]:
        rows = self._run(
            "SELECT id, received_at, topic, payload_excerpt, payload_size, reason"
            " FROM dead_letters ORDER BY id"
        )
        return [
            DeadLetter(
                id=row["id"],
                received_at=from_db(row["received_at"]),
                topic=row["topic"],
                payload_excerpt=row["payload_excerpt"],
                payload_size=row["payload_size"],
                reason=row["reason"],
            )
            for row in rows
        ]

    def skin_checks(self, profile: str | None = None) -> list[SkinCheckRecord]:
        rows = self._run(
            "SELECT event_id, profile, checked_at, redness, note FROM skin_checks"
            " WHERE :profile IS NULL OR profile = :profile ORDER BY checked_at",
            {"profile": profile},
        )
        return [
            SkinCheckRecord(
                event_id=row["event_id"],
                profile=row["profile"],
                checked_at=from_db(row["checked_at"]),
                redness=row["redness"],
                note=row["note"],
            )
            for row in rows
        ]

    def products(self, profile: str | None = None) -> list[ProductRecord]:
        rows = self._run(
            "SELECT event_id, profile, applied_at, product, ingredients FROM products_applied"
            " WHERE :profile IS NULL OR profile = :profile ORDER BY applied_at",
            {"profile": profile},
        )
        return [
            ProductRecord(
                event_id=row["event_id"],
                profile=row["profile"],
                applied_at=from_db(row["applied_at"]),
                product=row["product"],
                ingredients=tuple(json.loads(row["ingredients"])),
            )
            for row in rows
        ]

    def iter_events(self) -> Iterator[EventRecord]:
        rows = self._run(f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY seq")  # noqa: S608
        for row in rows:
            yield _event(row)

    def last_treated_session(self, profile: str, *, exclude: str | None) -> Session | None:
        """The profile's newest closed session whose skin was treated."""
        rows = self._run(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE profile = ?"  # noqa: S608
            " AND status != 'open' AND status NOT IN ('no_needling', 'voided') AND id IS NOT ?"
            " ORDER BY coalesce(ended_at, last_seen_at) DESC, seq DESC"
            " LIMIT 20",
            (profile, exclude),
        )
        for row in rows:
            session = _session(row)
            if needs_aftercare(session):
                return session
        return None

    def last_event_at(self, profile: str, event_type: str) -> datetime | None:
        """A seek for the indexed types (the last cleansing); a scan for any other."""
        indexed = f" AND {EVENT_INDEX_TERM}" if event_type in EVENT_INDEX_TYPES else ""
        row = self._run(
            f"SELECT max(occurred_at) FROM events WHERE profile = ? AND type = ?{indexed}",  # noqa: S608
            (profile, event_type),
        ).fetchone()
        return None if row[0] is None else from_db(row[0])

    def get_meta(self, key: str) -> str | None:
        row = self._run("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._run(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def recent_events(self, limit: int) -> list[EventRecord]:
        """The newest accepted events, newest first."""
        rows = self._run(
            f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY seq DESC LIMIT ?",  # noqa: S608
            (limit,),
        )
        return [_event(row) for row in rows]

    def has_heartbeat_between(
        self, profile: str, device_id: str, start: datetime, end: datetime
    ) -> bool:
        """Whether the device's heartbeat of that stretch (a UTC day) is kept as an event."""
        row = self._run(
            f"SELECT 1 FROM events WHERE profile = ? AND type = 'heartbeat' AND {EVENT_INDEX_TERM}"  # noqa: S608
            " AND occurred_at >= ? AND occurred_at < ? AND source = 'device' AND source_id = ?"
            " LIMIT 1",
            (profile, to_db(start), to_db(end), device_id),
        ).fetchone()
        return row is not None

    def data_version(self) -> int:
        """A number that changes whenever another connection commits to the file."""
        return int(self._run("PRAGMA data_version").fetchone()[0])

    def has_event(self, event_id: str) -> bool:
        row = self._run("SELECT 1 FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return row is not None

    def count(self, table: str) -> int:
        if table not in {"events", "sessions", "dead_letters", "skin_checks", "products_applied"}:
            msg = f"unknown table {table!r}"
            raise ValueError(msg)
        return int(self._run(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
