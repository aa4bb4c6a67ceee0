"""Wake-ups on APScheduler: one date job, re-armed to the next due time.

The database says what is due; the scheduler only knows when to look next, so
its job count never grows with the number of sessions or reminders.
"""

from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

log = structlog.get_logger(__name__)

_WAKE_JOB = "wake"


class Waker:
    """Calls ``on_wake`` at (or, after a pause, as soon as possible past) the armed time."""

    def __init__(self, on_wake: Callable[[], None]) -> None:
        self._on_wake = on_wake
        # misfire_grace_time=None: a wake-up missed while the process was
        # suspended still fires; APScheduler's default of 1 s drops it silently.
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._armed: datetime | None = None

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.shutdown(wait=False)

    def arm(self, when: datetime | None) -> None:
        """Wake at ``when``; None disarms. Re-arming to the same time is free."""
        if when == self._armed:
            return
        self._armed = when
        if when is None:
            if self._scheduler.get_job(_WAKE_JOB) is not None:
                self._scheduler.remove_job(_WAKE_JOB)
            return
        self._scheduler.add_job(
            self._fire, DateTrigger(run_date=when), id=_WAKE_JOB, replace_existing=True
        )
        log.debug("wake_armed", at=when.isoformat())

    def _fire(self) -> None:
        self._armed = None
        self._on_wake()
