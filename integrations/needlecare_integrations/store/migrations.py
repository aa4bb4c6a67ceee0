"""Numbered schema migrations, applied in order, with a backup first."""

import re
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from needlecare.logs import get_logger
from needlecare_integrations.store.timestamps import compact

log = get_logger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Migration = tuple[int, str]

# The WHERE term of the partial index events_profile_type (migration 6), word for word:
# SQLite uses a partial index only for a query that repeats it.
EVENT_INDEX_TYPES = ("heartbeat", "cleansed")
EVENT_INDEX_TERM = "type IN ('heartbeat', 'cleansed')"


class MigrationError(RuntimeError):
    """The migrations or the file's schema version rule out an upgrade."""


def _migrations() -> list[Migration]:
    folder = resources.files("needlecare_integrations.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return _checked(found)


def _checked(migrations: Sequence[Migration]) -> list[Migration]:
    found = sorted(migrations)
    numbers = [number for number, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        msg = f"migrations must be numbered 1..n without gaps, found {numbers}"
        raise MigrationError(msg)
    return found


SCHEMA_VERSION = len(_migrations())


def migrate(
    conn: sqlite3.Connection,
    path: Path,
    *,
    backup: bool,
    now: datetime,
    migrations: Sequence[Migration] | None = None,
) -> int:
    """Bring the schema to the newest migration; return the version found before.

    ``migrations`` defaults to the ones shipped with the package (SCHEMA_VERSION);
    tests hand in their own. A database that already holds data is copied next to
    itself first, so a failed or unwanted upgrade can be undone by hand.
    """
    steps = _migrations() if migrations is None else _checked(migrations)
    newest = len(steps)
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > newest:
        msg = f"{path} has schema {current}, newer than this release's {newest}"
        raise MigrationError(msg)
    pending = [(n, sql) for n, sql in steps if n > current]
    if not pending:
        return current
    if backup and current > 0:
        _backup(conn, path, current, now)
    # Migration 6 rewrites every stored moment through the same code that writes them.
    conn.create_function("compact_time", 1, compact, deterministic=True)
    for number, sql in pending:
        _apply(conn, number, sql)
        log.info("store_migrated", path=str(path), version=number)
    if any(number in REWRITING for number, _ in pending) and (current > 0 or not _shrinks(conn)):
        _vacuum(conn, path)
    return current


# Migrations after which an existing file is rewritten once: 5 switches it to
# auto_vacuum = INCREMENTAL (retention gives freed pages back), which SQLite takes on an
# existing file only with a VACUUM; 6 shrinks rows, which leaves pages part-empty.
REWRITING = frozenset({5, 6})
_INCREMENTAL = 2


def _shrinks(conn: sqlite3.Connection) -> bool:
    return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == _INCREMENTAL


def _vacuum(conn: sqlite3.Connection, path: Path) -> None:
    """Rewrite an existing file, packed and able to shrink (PRAGMA auto_vacuum)."""
    if not _shrinks(conn):
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    # VACUUM rewrites the whole file (about as long as copying it) and cannot run in a
    # transaction; it is what makes the new auto_vacuum mode take effect.
    conn.execute("VACUUM")
    log.info("store_vacuumed", path=str(path), auto_vacuum="incremental")


def _apply(conn: sqlite3.Connection, number: int, sql: str) -> None:
    """Run one migration atomically: all of it and the new user_version, or nothing."""
    try:
        # executescript commits any open transaction; BEGIN makes each migration atomic.
        # A script that fails half-way leaves that transaction open: end it below.
        conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _backup(conn: sqlite3.Connection, path: Path, version: int, now: datetime) -> None:
    stamp = now.astimezone(UTC)
    target = path.with_name(f"{path.name}.bak-v{version}-{stamp:%Y%m%dT%H%M%SZ}")
    with sqlite3.connect(target) as copy:
        conn.backup(copy)
    copy.close()
    log.info("store_backed_up", path=str(target), version=version)
