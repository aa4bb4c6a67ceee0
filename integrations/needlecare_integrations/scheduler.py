"""Wake-ups on APScheduler: one date job, armed no later than the next due time.

The database says what is due; the scheduler only knows when to look next, so
its job count never grows with the number of sessions or reminders.
"""

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from needlecare.logs import get_logger

log = get_logger(__name__)

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
        self._lock = threading.Lock()  # the core thread arms, APScheduler's fires

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.shutdown(wait=False)

    @property
    def armed(self) -> datetime | None:
        return self._armed

    def arm(self, when: datetime | None) -> None:
        """Wake at ``when`` at the latest; None means nothing is due.

        An earlier wake-up already armed is kept: it costs one turn that finds
        nothing due and re-arms. Re-arming APScheduler on every turn cost tens
        of microseconds and woke its thread each time, while the core thread
        had prompts to send.
        """
        with self._lock:
            if when is None or (self._armed is not None and when >= self._armed):
                return
            self._armed = when
            self._scheduler.add_job(
                self._fire,
                DateTrigger(run_date=when, timezone=UTC),
                id=_WAKE_JOB,
                replace_existing=True,
            )
        log.debug("wake_armed", at=when.isoformat())

    def _fire(self) -> None:
        with self._lock:
            self._armed = None
        self._on_wake()
