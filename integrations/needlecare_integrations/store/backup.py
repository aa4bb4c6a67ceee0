"""Copies of the store: a consistent backup while the daemon writes, and a checked restore.

A backup uses SQLite's online backup API from a read-only connection, in one step:
that is one read transaction, so the copy is the store as of one commit (WAL lets
the daemon go on committing meanwhile), never a torn mix. Copying the file with
``cp`` instead can catch a page half-written or miss what is still in the -wal.

A restore refuses while a daemon holds the store's lock, and holds that lock itself
so that no daemon starts half-way. It checks the file first (``integrity_check``,
a schema this release can read or migrate), copies the current store aside (with
what its -wal holds), and only then puts the backup in its place.
"""

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from needlecare_integrations.store.lock import StoreLock
from needlecare_integrations.store.migrations import SCHEMA_VERSION

_TABLES = {"events", "sessions", "dead_letters"}


class BackupError(RuntimeError):
    """The backup or restore cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Copied:
    path: Path
    schema: int
    size: int


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """The whole database through the backup API into ``target`` (one self-contained file)."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with closing(sqlite3.connect(partial, isolation_level=None)) as copy:
            source.backup(copy)  # all pages in one step: one consistent snapshot
            copy.execute("PRAGMA journal_mode = DELETE")
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def check(path: Path) -> int:
    """The schema version of a store file that is whole and that this release can open."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            verdict = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} is not a readable SQLite database: {error}") from error
    if verdict != ["ok"]:
        raise BackupError(f"{path} fails SQLite's integrity check: {'; '.join(verdict[:5])}")
    if version > SCHEMA_VERSION:
        msg = f"{path} has schema {version}, newer than this release's {SCHEMA_VERSION}"
        raise BackupError(msg)
    if version < 1 or not _TABLES.issubset(tables):
        raise BackupError(f"{path} is not a needlecare store (schema {version})")
    return version


def backup(store: Path, target: Path, *, overwrite: bool = False) -> Copied:
    """Copy the store to ``target`` while a daemon may be writing to it."""
    if not store.exists():
        raise BackupError(f"no store at {store}")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists already (--force replaces it)")
    if target.resolve() == store.resolve():
        raise BackupError("the backup cannot be the store itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as source:
            source.execute("PRAGMA busy_timeout = 5000")
            _copy(source, target)
    except sqlite3.Error as error:
        raise BackupError(f"cannot back up {store}: {error}") from error
    return Copied(target, check(target), target.stat().st_size)


def restore(backup_file: Path, store: Path, *, now: datetime) -> tuple[Copied, Path | None]:
    """Put ``backup_file`` in the store's place; the previous store is kept aside.

    Raises ``StoreLockedError`` (from the lock) while a daemon runs on the store.
    """
    schema = check(backup_file)
    with StoreLock(store):
        aside: Path | None = None
        if store.exists():
            stamp = now.astimezone(UTC)
            aside = store.with_name(f"{store.name}.before-restore-{stamp:%Y%m%dT%H%M%SZ}")
            try:
                with closing(sqlite3.connect(store, isolation_level=None)) as current:
                    _copy(current, aside)  # with whatever the -wal still holds
            except sqlite3.Error as error:
                raise BackupError(f"cannot copy the current store aside: {error}") from error
        try:
            with closing(sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)) as source:
                _copy(source, store.with_name(store.name + ".restoring"))
        except sqlite3.Error as error:
            raise BackupError(f"cannot read {backup_file}: {error}") from error
        for suffix in ("-wal", "-shm"):
            store.with_name(store.name + suffix).unlink(missing_ok=True)
        store.with_name(store.name + ".restoring").replace(store)
    return Copied(store, schema, store.stat().st_size), aside
