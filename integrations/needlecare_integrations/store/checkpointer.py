"""Copies the write-ahead log back into the database on a thread of its own.

SQLite checkpoints inside whichever commit takes the log past 1,000 pages, so
that turn copied and fsynced the database file before its prompt could go out:
the latency tail. This thread checkpoints first, with a second connection,
between commits, so the log rarely gets that long; the writer's own automatic
checkpoint stays as the bound on the log's size (a steady stream of commits
can keep a concurrent checkpoint from ever catching up). A PASSIVE checkpoint
never blocks the writer, and sqlite3 releases the GIL while it runs.

It wakes only when poked after commits that changed at least ``min_rows`` rows
between them, and at most once per ``pause_s`` while commits keep coming: an idle
daemon never wakes it. Small commits (a heartbeat, a confirmation) do not wake it:
checkpointing after each of them copied its page into the database file and fsynced
it, doubling what a heartbeat wrote; their few distinct pages are copied once by
SQLite's own checkpoint at 1,000 pages of log, which then costs next to nothing.
"""

import sqlite3
import threading
from pathlib import Path

from needlecare.logs import get_logger

log = get_logger(__name__)


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` after commits, off the core thread."""

    def __init__(self, path: Path, *, pause_s: float = 0.2, min_rows: int = 200) -> None:
        self._path = path
        self._pause_s = pause_s
        self._min_rows = min_rows
        self._rows = 0  # changed since the last checkpoint; only the core thread adds
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.completed = 0  # checkpoints run, for tests and benchmarks

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def poke(self, rows: int | None = None) -> None:
        """``rows`` were committed (None: any number): checkpoint soon once enough piled up."""
        self._rows += self._min_rows if rows is None else rows
        if self._rows >= self._min_rows:
            self._rows = 0
            self._wanted.set()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            log.warning("checkpointer_unavailable", error=str(error))
            return
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            while True:
                self._wanted.wait()
                if self._stopping.is_set():
                    return
                self._wanted.clear()
                self._checkpoint(conn)
                # Commits during the pause set the flag again: one checkpoint covers them.
                if self._stopping.wait(self._pause_s):
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            # fetchall: a statement left unfinished would hold a read lock and keep the
            # writer from starting the log over.
            [(busy, frames, copied)] = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as error:
            # Disk full or read-only: the writer's own checkpoint and the next poke retry.
            log.warning("checkpoint_failed", error=str(error))
            return
        self.completed += 1
        log.debug("checkpointed", busy=busy, frames=frames, copied=copied)
