"""Numbered schema migrations, applied in order, with a backup first."""

import re
import sqlite3
from datetime import datetime
from importlib import resources
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("needlecare_integrations.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [number for number, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        msg = f"migrations must be numbered 1..n without gaps, found {numbers}"
        raise RuntimeError(msg)
    return found


SCHEMA_VERSION = len(_migrations())


def migrate(conn: sqlite3.Connection, path: Path, *, backup: bool, now: datetime) -> int:
    """Bring the schema to SCHEMA_VERSION; return the version found before.

    A database that already holds data is copied next to itself first, so a
    failed or unwanted upgrade can be undone by hand.
    """
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        msg = f"{path} has schema {current}, newer than this release's {SCHEMA_VERSION}"
        raise RuntimeError(msg)
    pending = [(n, sql) for n, sql in _migrations() if n > current]
    if not pending:
        return current
    if backup and current > 0:
        _backup(conn, path, current, now)
    for number, sql in pending:
        # executescript commits any open transaction; BEGIN makes each migration atomic.
        conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
        log.info("store_migrated", path=str(path), version=number)
    return current


def _backup(conn: sqlite3.Connection, path: Path, version: int, now: datetime) -> None:
    target = path.with_name(f"{path.name}.bak-v{version}-{now:%Y%m%dT%H%M%SZ}")
    with sqlite3.connect(target) as copy:
        conn.backup(copy)
    copy.close()
    log.info("store_backed_up", path=str(target), version=version)
