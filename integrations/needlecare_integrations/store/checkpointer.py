"""Copies the write-ahead log back into the database on a thread of its own.

SQLite checkpoints inside whichever commit takes the log past its bound (500 pages,
store/sqlite.py), so that turn copied and fsynced the database file before its
prompt could go out: the latency tail. This thread checkpoints first, with a second connection,
between commits, so the log rarely gets that long; the writer's own automatic
checkpoint stays as the bound on the log's size (a steady stream of commits
can keep a concurrent checkpoint from ever catching up). A PASSIVE checkpoint
never blocks the writer, and sqlite3 releases the GIL while it runs.

It wakes only when poked after a commit that left at least ``min_frames`` pages in
the log not yet copied back, and at most once per ``pause_s`` while commits keep
coming: an idle daemon never wakes it. The count is read from the log's index (the
``-shm`` file's header, https://www.sqlite.org/walformat.html), not guessed from the
rows written: a session's end changes 8 rows and writes 17 pages, so a threshold of
200 rows let the log reach SQLite's own bound (500 pages) first, and 1 prompt in 25
waited 1-2 ms for that checkpoint inside its commit. Small commits (a heartbeat, a
confirmation) do not wake it before then: checkpointing after each of them copied
its page into the database file and fsynced it, doubling what a heartbeat wrote.
"""

import os
import sqlite3
import struct
import threading
from pathlib import Path

from needlecare.logs import get_logger

log = get_logger(__name__)

# The wal-index header (https://www.sqlite.org/walformat.html): mxFrame in the first
# copy of WalIndexHdr, nBackfill in the checkpoint information after both copies.
_MX_FRAME, _BACKFILL, _HEADER_BYTES = 16, 96, 100


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` after commits, off the core thread."""

    def __init__(self, path: Path, *, pause_s: float = 0.2, min_frames: int = 400) -> None:
        self._path = path
        self._pause_s = pause_s
        self._min_frames = min_frames
        self._index: int | None = None  # the -shm file, opened at the first poke
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
        if self._index is not None:
            os.close(self._index)
            self._index = None

    def poke(self) -> None:
        """A commit: checkpoint soon if the log holds ``min_frames`` pages not copied back."""
        waiting = self._frames_waiting()
        if waiting is None or waiting >= self._min_frames:
            self._wanted.set()

    def _frames_waiting(self) -> int | None:
        """Frames in the log not yet copied back, from its index; None if unreadable."""
        try:
            if self._index is None:
                self._index = os.open(f"{self._path}-shm", os.O_RDONLY)
            header = os.pread(self._index, _HEADER_BYTES, 0)
        except OSError:
            return None
        if len(header) < _HEADER_BYTES:
            return None
        # Native byte order: mxFrame (the last valid frame) and nBackfill (the frames
        # a checkpoint copied). A torn read only moves one checkpoint a little.
        last = int(struct.unpack_from("=I", header, _MX_FRAME)[0])
        copied = int(struct.unpack_from("=I", header, _BACKFILL)[0])
        return last - copied if last >= copied else last

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
