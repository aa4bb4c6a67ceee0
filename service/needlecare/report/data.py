"""What the report shows, worked out from the journal: pure functions of records and time.

Nothing here reads a clock, a file or a database, and nothing draws: the caller
hands in the profile's records and the protocols, and gets back plain values that
the plots and the HTML page only lay out.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from needlecare.domain.planning import recovery_day, window_for
from needlecare.domain.protocol import CareProtocol, ingredient_classes
from needlecare.domain.records import ProductRecord, SkinCheckRecord
from needlecare.domain.reminders import Reminder, ReminderStatus
from needlecare.domain.sessions import Session, needs_aftercare

#: How a reminder went, in the order the table and the chart show them.
OUTCOMES: Final = ("on time", "late", "missed", "snoozed", "cancelled", "pending")
_BY_STATUS: Final = {
    ReminderStatus.SENT: "on time",
    ReminderStatus.LATE: "late",
    ReminderStatus.MISSED: "missed",
    ReminderStatus.SNOOZED: "snoozed",
    ReminderStatus.CANCELLED: "cancelled",
    ReminderStatus.PENDING: "pending",
}
RECENT_REMINDERS: Final = 12


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session with its recovery pause and next-session window, when it needs them."""

    session: Session
    at: datetime
    pause_end: datetime | None
    window: tuple[datetime, datetime] | None

    @property
    def treated(self) -> bool:
        return self.pause_end is not None

    @property
    def end(self) -> datetime:
        """The session end for a treated session; otherwise the time it is drawn at."""
        return self.session.ended_at or self.at


@dataclass(frozen=True, slots=True)
class ReminderTally:
    """How the reminders of one kind went, counted by outcome."""

    kind: str
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class CheckPoint:
    """A skin check placed on its session's recovery days."""

    check: SkinCheckRecord
    day: int


@dataclass(frozen=True, slots=True)
class RednessSeries:
    """The skin checks that followed one session, before the next one ended."""

    session: SessionView
    points: tuple[CheckPoint, ...]
    threshold: int
    after_day: int

    def advised(self, point: CheckPoint) -> bool:
        """Whether ``point`` is red enough, late enough, for the protocol's redness advice."""
        return point.check.redness >= self.threshold and point.day >= self.after_day


@dataclass(frozen=True, slots=True)
class ProductView:
    """A product applied, and whether it broke the actives pause then in force."""

    record: ProductRecord
    classes: tuple[str, ...]
    session: SessionView | None
    warning: bool


def session_views(
    sessions: Iterable[Session], protocols: Mapping[str, CareProtocol]
) -> tuple[SessionView, ...]:
    """Every session, oldest first, with the pause and window of treated ones."""
    views = [_view(session, protocols[session.setting]) for session in sessions]
    return tuple(sorted(views, key=lambda view: view.at))


def _view(session: Session, protocol: CareProtocol) -> SessionView:
    at = session.ended_at or session.started_at or session.last_seen_at
    if session.ended_at is None or not needs_aftercare(session):
        return SessionView(session, at, None, None)
    return SessionView(
        session, at, session.ended_at + protocol.actives_pause, window_for(session, protocol)
    )


def outcome(reminder: Reminder, late_after: timedelta) -> str:
    """On time, late, missed, snoozed, cancelled or pending.

    An acknowledged reminder counts as late when its first delivery was later than
    ``late_after`` (``reminders.late_after``), as the daemon judged it when sent.
    """
    if reminder.status is not ReminderStatus.ACKED:
        return _BY_STATUS[reminder.status]
    if reminder.delivered_at is None:
        return "on time"
    return "late" if reminder.delivered_at - reminder.planned_at > late_after else "on time"


def tallies(reminders: Iterable[Reminder], late_after: timedelta) -> tuple[ReminderTally, ...]:
    """Counts per kind and outcome, kinds by first due time."""
    counts: dict[str, Counter[str]] = {}
    for reminder in sorted(reminders, key=lambda r: r.planned_at):
        counts.setdefault(reminder.kind, Counter())[outcome(reminder, late_after)] += 1
    return tuple(
        ReminderTally(kind, {name: found[name] for name in OUTCOMES})
        for kind, found in counts.items()
    )


def recent(reminders: Iterable[Reminder], now: datetime) -> tuple[Reminder, ...]:
    """The latest reminders already due at ``now``, newest first."""
    due = [reminder for reminder in reminders if reminder.due_at <= now]
    due.sort(key=lambda reminder: reminder.due_at, reverse=True)
    return tuple(due[:RECENT_REMINDERS])


def treated_before(views: Sequence[SessionView], moment: datetime) -> SessionView | None:
    """The last treated session that ended at or before ``moment``."""
    ended = [view for view in views if view.treated and view.end <= moment]
    return max(ended, key=lambda view: view.end, default=None)


def latest_treated(views: Sequence[SessionView]) -> SessionView | None:
    """The treated session that ended last, as the daemon's profile state sees it."""
    return max((view for view in views if view.treated), key=lambda v: v.end, default=None)


def redness_series(
    views: Sequence[SessionView],
    checks: Iterable[SkinCheckRecord],
    protocols: Mapping[str, CareProtocol],
    zone: ZoneInfo,
) -> tuple[RednessSeries, ...]:
    """Skin checks grouped by the session before them; checks before any session are left out."""
    grouped: dict[str, list[CheckPoint]] = {}
    owners: dict[str, SessionView] = {}
    for check in sorted(checks, key=lambda c: c.checked_at):
        view = treated_before(views, check.checked_at)
        if view is None:
            continue
        owners[view.session.id] = view
        day = recovery_day(view.end, check.checked_at, zone)
        grouped.setdefault(view.session.id, []).append(CheckPoint(check, day))
    series = []
    for sid, points in grouped.items():
        protocol = protocols[owners[sid].session.setting]
        series.append(
            RednessSeries(
                owners[sid], tuple(points), protocol.redness_threshold, protocol.redness_after_day
            )
        )
    return tuple(series)


def product_views(
    views: Sequence[SessionView],
    products: Iterable[ProductRecord],
    protocols: Mapping[str, CareProtocol],
) -> tuple[ProductView, ...]:
    """Each product with its restricted classes; a warning inside an actives pause.

    The rule is the ``restricted_product`` guard's: the product's name counts as
    an ingredient, and the pause is that of the last treated session before it.
    """
    shown = []
    for record in sorted(products, key=lambda p: p.applied_at):
        view = treated_before(views, record.applied_at)
        protocol = protocols[view.session.setting if view else "home"]
        classes = ingredient_classes((record.product, *record.ingredients), protocol)
        warning = bool(classes) and in_pause(view, record.applied_at)
        shown.append(ProductView(record, classes, view, warning))
    return tuple(shown)


def in_pause(view: SessionView | None, moment: datetime) -> bool:
    """Whether ``moment`` falls inside ``view``'s actives pause."""
    if view is None or view.pause_end is None:
        return False
    return view.end <= moment < view.pause_end
