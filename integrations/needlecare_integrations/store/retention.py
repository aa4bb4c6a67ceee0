"""Purging old rows in small batches, and giving the space back.

Every delete takes the oldest rows by their integer key (a seek on the primary
key, never a scan) and stops after ``limit`` rows, so a purge step costs about
the same on a store of a week or of ten years. Rows are appended in time order,
so "the oldest few hundred by key, those of them older than the cut-off" is the
head of the table until nothing there is old enough.
"""

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from needlecare_integrations.store.migrations import EVENT_INDEX_TERM

Run = Callable[..., sqlite3.Cursor]
Script = Callable[[str], object]
ToDb = Callable[[datetime], str]

DROPPED_KEY = "dead_letters_dropped"
# How far the thinning of heartbeat rows written before one-row-a-day has come.
THINNED_KEY = "heartbeats_thinned_to_seq"


@dataclass(frozen=True, slots=True)
class PurgeLimits:
    """What may go: everything older than the cut-offs, dead letters beyond the cap."""

    events_before: datetime
    dead_letters_before: datetime
    dead_letters_max: int
    outbox_before: datetime
    limit: int


@dataclass(frozen=True, slots=True)
class PurgeResult:
    events: int = 0
    dead_letters: int = 0
    outbox: int = 0
    pages_freed: int = 0
    heartbeats: int = 0  # rows beyond a device's first of its day (stores from before v5)
    heartbeats_scanned: int = 0

    @property
    def rows(self) -> int:
        return self.events + self.dead_letters + self.outbox + self.heartbeats


class RetentionTables:
    """The purge statements; run inside the caller's transaction."""

    def __init__(self, run: Run, to_db: ToDb, script: Script) -> None:
        self._run = run
        self._to_db = to_db
        self._script = script

    def purge(self, limits: PurgeLimits) -> PurgeResult:
        thinned, scanned = self._thin_heartbeats(limits.limit)
        return PurgeResult(
            events=self._purge_events(limits),
            dead_letters=self._purge_dead_letters(limits),
            outbox=self._purge_outbox(limits),
            heartbeats=thinned,
            heartbeats_scanned=scanned,
        )

    def _thin_heartbeats(self, limit: int) -> tuple[int, int]:
        """Delete heartbeat rows that are not their device's first of the UTC day.

        Since schema 5 only the first beat of a day becomes a row; a store from
        before keeps one row per beat (a year of them at a beat a minute is half a
        million rows). This walks those rows once, ``limit`` at a time, from where it
        stopped (kept in meta); on a store without old rows it finds nothing to do.
        """
        row = self._run("SELECT value FROM meta WHERE key = ?", (THINNED_KEY,)).fetchone()
        after = 0 if row is None else int(row[0])
        seqs = [
            seq
            for (seq,) in self._run(
                "SELECT seq FROM events WHERE type = 'heartbeat' AND seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
        ]
        if not seqs:
            # None past the cursor: move it to the end, so the next walk starts there
            # instead of reading every later event again.
            top = self._run("SELECT max(seq) FROM events").fetchone()[0]
            if top is not None and int(top) > after:
                self._set_thinned(int(top))
            return 0, 0
        marks = ", ".join("?" for _ in seqs)
        cursor = self._run(
            f"DELETE FROM events WHERE seq IN ({marks}) AND EXISTS (SELECT 1 FROM events AS first"  # noqa: S608
            " WHERE first.profile IS events.profile AND first.type = 'heartbeat'"
            f" AND first.{EVENT_INDEX_TERM}"
            " AND first.occurred_at >= substr(events.occurred_at, 1, 10)"
            " AND first.occurred_at < events.occurred_at"
            " AND first.source_id = events.source_id)",
            seqs,
        )
        self._set_thinned(seqs[-1])
        return cursor.rowcount, len(seqs)

    def _purge_events(self, limits: PurgeLimits) -> int:
        # received_at, not occurred_at: a device's clock does not decide what is old.
        cursor = self._run(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)"
            " AND received_at < ?",
            (limits.limit, self._to_db(limits.events_before)),
        )
        return cursor.rowcount

    def _purge_dead_letters(self, limits: PurgeLimits) -> int:
        over = self._dead_letter_count() - limits.dead_letters_max
        by_count = 0
        if over > 0:
            # Beyond the cap: the oldest go, however many (a flood must not outrun the cap),
            # and the number is kept so that status can say how many were dropped.
            by_count = self._run(
                "DELETE FROM dead_letters WHERE id IN"
                " (SELECT id FROM dead_letters ORDER BY id LIMIT ?)",
                (over,),
            ).rowcount
            self._add_dropped(by_count)
        by_age = self._run(
            "DELETE FROM dead_letters WHERE id IN"
            " (SELECT id FROM dead_letters ORDER BY id LIMIT ?) AND received_at < ?",
            (limits.limit, self._to_db(limits.dead_letters_before)),
        ).rowcount
        return by_count + by_age

    def _purge_outbox(self, limits: PurgeLimits) -> int:
        # Pending items are never purged, nor failed ones (an operator may want to see
        # them) until they are as old as the oldest dead letter kept.
        cursor = self._run(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
            " WHERE status IN ('sent', 'cancelled') AND coalesce(sent_at, created_at) < ?"
            " ORDER BY id LIMIT ?)",
            (self._to_db(limits.outbox_before), limits.limit),
        )
        failed = self._run(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
            " WHERE status = 'failed' AND created_at < ? ORDER BY id LIMIT ?)",
            (self._to_db(limits.dead_letters_before), limits.limit),
        )
        return cursor.rowcount + failed.rowcount

    def _dead_letter_count(self) -> int:
        return int(self._run("SELECT count(*) FROM dead_letters").fetchone()[0])

    def _set_thinned(self, seq: int) -> None:
        self._run(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (THINNED_KEY, str(seq)),
        )

    def dropped_dead_letters(self) -> int:
        row = self._run("SELECT value FROM meta WHERE key = ?", (DROPPED_KEY,)).fetchone()
        return 0 if row is None else int(row[0])

    def _add_dropped(self, count: int) -> None:
        if count <= 0:
            return
        self._run(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
            " value = CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER)",
            (DROPPED_KEY, str(count)),
        )

    def free_pages(self) -> int:
        return int(self._run("PRAGMA freelist_count").fetchone()[0])

    def vacuum_step(self, pages: int) -> int:
        """Give up to ``pages`` free pages back to the file system (incremental vacuum).

        Outside any transaction: it commits on its own. (Through execute() the pragma
        frees one page per call; a script runs it to the end.)
        """
        before = self.free_pages()
        if before == 0:
            return 0
        self._script(f"PRAGMA incremental_vacuum({int(pages)});")
        return before - self.free_pages()


def stats(run: Run) -> dict[str, Any]:
    """Page size, page count, free pages: what the store occupies."""
    page_size = int(run("PRAGMA page_size").fetchone()[0])
    pages = int(run("PRAGMA page_count").fetchone()[0])
    free = int(run("PRAGMA freelist_count").fetchone()[0])
    return {"page_size": page_size, "pages": pages, "free_pages": free, "bytes": page_size * pages}
