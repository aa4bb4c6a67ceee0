"""Retention: the store forgets what nobody reads, a few hundred rows at a time.

The journal (sessions, skin checks, products, reminders and their outcomes) is
kept forever. Raw events older than ``retention.events_days``, dead letters
beyond the cap or older than their window, and sent or cancelled outbox items
after a few days are deleted in steps of ``batch_rows`` per table, each step a
short transaction of its own after a turn, never inside one. Freed pages go back
to the file system (incremental vacuum), so the file stops growing.

A round starts every ``interval_s`` (the core loop's single wake-up covers it)
and continues one step per second while steps come back full; dead letters
piling up faster than that (a flood) start a step at once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from needlecare.config.models import RetentionConfig
from needlecare.logs import get_logger
from needlecare_integrations.store.retention import PurgeLimits, PurgeResult

log = get_logger(__name__)

STEP_PAUSE = timedelta(seconds=1)
# Free pages (of 4 KiB) tolerated before they are given back: a file that shrinks
# and grows again by a few pages would only write more.
FREE_PAGES_KEPT = 256


class RetentionStore(Protocol):
    """What a purge step needs from the store."""

    def purge(self, limits: PurgeLimits) -> PurgeResult: ...

    def free_pages(self) -> int: ...

    def vacuum_step(self, pages: int) -> int: ...


@dataclass
class Retention:
    """Decides when a purge step is due and runs it (inside the caller's transaction)."""

    tables: RetentionStore
    config: RetentionConfig
    next_at: datetime | None = None
    letters_since: int = 0

    def note_dead_letters(self, count: int) -> None:
        self.letters_since += count

    def due(self, now: datetime) -> bool:
        if not self.config.enabled:
            return False
        if self.letters_since >= self.config.batch_rows:
            return True
        return self.next_at is None or now >= self.next_at

    def next_wake(self) -> datetime | None:
        return self.next_at if self.config.enabled else None

    def step(self, now: datetime) -> PurgeResult:
        """One purge step (inside the caller's transaction): at most ``batch_rows`` rows a table."""
        cfg = self.config
        limits = PurgeLimits(
            events_before=now - timedelta(days=cfg.events_days),
            dead_letters_before=now - timedelta(days=cfg.dead_letters_days),
            dead_letters_max=cfg.dead_letters_max,
            outbox_before=now - timedelta(days=cfg.outbox_days),
            limit=cfg.batch_rows,
        )
        result = self.tables.purge(limits)
        self.letters_since = 0
        more = max(result.events, result.outbox, result.heartbeats_scanned) >= cfg.batch_rows
        self.next_at = now + (STEP_PAUSE if more else timedelta(seconds=cfg.interval_s))
        if result.rows:
            log.info(
                "store_purged",
                events=result.events,
                dead_letters=result.dead_letters,
                outbox=result.outbox,
                heartbeats=result.heartbeats,
                more=more,
            )
        return result

    def give_back(self, now: datetime) -> int:
        """After the step's commit: return free pages to the file system, a batch at a time."""
        if not self.config.enabled or self.tables.free_pages() <= FREE_PAGES_KEPT:
            return 0
        freed = self.tables.vacuum_step(self.config.batch_rows)
        if self.tables.free_pages() > FREE_PAGES_KEPT and self.next_at is not None:
            self.next_at = min(self.next_at, now + STEP_PAUSE)
        log.info("store_vacuumed_step", pages_freed=freed)
        return freed
