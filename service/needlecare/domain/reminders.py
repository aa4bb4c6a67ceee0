"""A reminder's life: planned, delivered (on time or late) or missed, snoozed, acked.

Pure transitions over an immutable ``Reminder``; the caller stores the result.
Statuses (PRODUCT §5): pending, sent, late, acked, snoozed, missed, cancelled.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from needlecare.domain.localtime import QuietWindow, quiet_hours_end
from needlecare.domain.protocol import Channel, Escalation, Severity

if TYPE_CHECKING:
    # Only a type here: the store reads and writes reminders without loading planning
    # (and the translations it pulls in) before the daemon is online.
    from needlecare.domain.planning import PlannedReminder


class ReminderStatus(StrEnum):
    """Where a reminder stands."""

    PENDING = "pending"
    SENT = "sent"
    LATE = "late"
    ACKED = "acked"
    SNOOZED = "snoozed"
    MISSED = "missed"
    CANCELLED = "cancelled"


WAITING = (ReminderStatus.PENDING, ReminderStatus.SNOOZED)
DELIVERED = (ReminderStatus.SENT, ReminderStatus.LATE)


@dataclass(frozen=True, slots=True)
class Reminder:
    """A stored reminder. ``due_at`` is the next delivery; ``planned_at`` the first."""

    id: str
    session_id: str | None
    profile: str
    kind: str
    title: str
    message: str
    severity: Severity
    channels: tuple[Channel, ...]
    needs_ack: bool
    escalation: tuple[Escalation, ...]
    status: ReminderStatus
    due_at: datetime
    planned_at: datetime
    created_at: datetime
    expires_at: datetime | None = None
    delivered_at: datetime | None = None
    acked_at: datetime | None = None
    escalation_level: int = 0
    next_check_at: datetime | None = None
    rounds: int = 0
    # The voice text of a fresh plan (see PlannedReminder.speech); not stored, so a
    # reminder read back from the store has "" and its voice falls back to title and message.
    speech: str = field(default="", compare=False)

    def is_open(self, now: datetime) -> bool:
        """Shown to the user and not yet answered or expired."""
        expired = self.expires_at is not None and self.expires_at <= now
        return self.status in DELIVERED and not expired


@dataclass(frozen=True, slots=True)
class Timing:
    """How late a delivery may be before it is flagged late, or given up as missed."""

    late_after: timedelta = timedelta(minutes=2)
    grace: timedelta = timedelta(hours=12)


def from_plan(planned: "PlannedReminder", now: datetime) -> Reminder:
    """A new pending reminder from a planned one."""
    return Reminder(
        id=planned.id,
        session_id=planned.session_id,
        profile=planned.profile,
        kind=planned.kind,
        title=planned.title,
        message=planned.message,
        severity=planned.severity,
        channels=planned.channels,
        needs_ack=planned.needs_ack,
        escalation=planned.escalation,
        status=ReminderStatus.PENDING,
        due_at=planned.due_at,
        planned_at=planned.due_at,
        created_at=now,
        expires_at=planned.expires_at,
        speech=planned.speech,
    )


def replanned(current: Reminder, planned: "PlannedReminder") -> Reminder | None:
    """The updated reminder when a plan is recomputed, or None to leave it alone.

    Only reminders still waiting for their first delivery follow the new plan;
    what the user has already seen stays as it was.
    """
    if current.status is not ReminderStatus.PENDING or current.rounds:
        return None
    updated = replace(
        current,
        title=planned.title,
        message=planned.message,
        severity=planned.severity,
        channels=planned.channels,
        needs_ack=planned.needs_ack,
        escalation=planned.escalation,
        due_at=planned.due_at,
        planned_at=planned.due_at,
        expires_at=planned.expires_at,
        speech=planned.speech,
    )
    return None if updated == current else updated


def deliver(reminder: Reminder, now: datetime, timing: Timing) -> Reminder:
    """Deliver a due reminder: ``sent``, ``late``, or ``missed`` if past its grace."""
    if reminder.status not in WAITING:
        return reminder
    lateness = now - reminder.due_at
    expired = reminder.expires_at is not None and reminder.expires_at <= now
    if lateness > timing.grace or expired:
        return replace(reminder, status=ReminderStatus.MISSED, next_check_at=None)
    status = ReminderStatus.LATE if lateness > timing.late_after else ReminderStatus.SENT
    return replace(
        reminder,
        status=status,
        delivered_at=reminder.delivered_at or now,
        rounds=reminder.rounds + 1,
        next_check_at=_next_check(reminder, reminder.escalation_level, now),
    )


def _next_check(reminder: Reminder, level: int, since: datetime) -> datetime | None:
    if not reminder.needs_ack or level >= len(reminder.escalation):
        return None
    previous = reminder.escalation[level - 1].after if level else timedelta(0)
    return since + (reminder.escalation[level].after - previous)


def escalate(reminder: Reminder, now: datetime) -> tuple[Reminder, tuple[Channel, ...]]:
    """Move an unanswered reminder one rung up its ladder; returns the new channels."""
    if reminder.status not in DELIVERED or reminder.escalation_level >= len(reminder.escalation):
        return replace(reminder, next_check_at=None), ()
    rung = reminder.escalation[reminder.escalation_level]
    level = reminder.escalation_level + 1
    updated = replace(
        reminder, escalation_level=level, next_check_at=_next_check(reminder, level, now)
    )
    return updated, rung.channels


def acknowledge(reminder: Reminder, now: datetime) -> Reminder | None:
    """Acked; None when there is nothing to acknowledge (already answered or gone)."""
    if reminder.status in (ReminderStatus.ACKED, ReminderStatus.CANCELLED):
        return None
    return replace(reminder, status=ReminderStatus.ACKED, acked_at=now, next_check_at=None)


def snooze(reminder: Reminder, minutes: int, now: datetime) -> Reminder | None:
    """Deliver again in ``minutes``; None when the reminder is already closed."""
    if reminder.status in (ReminderStatus.ACKED, ReminderStatus.CANCELLED, ReminderStatus.MISSED):
        return None
    return replace(
        reminder,
        status=ReminderStatus.SNOOZED,
        due_at=now + timedelta(minutes=minutes),
        next_check_at=None,
        escalation_level=0,
    )


def back_in_plan(reminder: Reminder) -> bool:
    """Whether a plan step left aside may follow the plan again.

    Cancelled steps (their session was superseded, then the newer one voided) and
    missed steps never shown (recorded as passed, until a late end moved the session)
    follow a recomputed plan; everything the person has seen stays as it was.
    """
    never_shown = reminder.status is ReminderStatus.MISSED and reminder.rounds == 0
    return reminder.status is ReminderStatus.CANCELLED or never_shown


def restored(cancelled: Reminder, planned: "PlannedReminder", now: datetime) -> Reminder:
    """A cancelled plan step back in the plan (the session that superseded it was voided).

    One never shown starts afresh; one shown before keeps its rounds and is shown
    again as a new round (or missed, if its time is long gone), never colliding with
    the earlier deliveries.
    """
    if cancelled.rounds == 0:
        return replace(from_plan(planned, now), created_at=cancelled.created_at)
    return replace(cancelled, status=ReminderStatus.SNOOZED, next_check_at=None)


def passed(planned: "PlannedReminder", now: datetime) -> Reminder:
    """A step already past when its session was recorded: missed, never announced."""
    return replace(from_plan(planned, now), status=ReminderStatus.MISSED)


def cancel(reminder: Reminder) -> Reminder:
    """Superseded by a newer plan or voided: kept for the record, delivered no more."""
    return replace(reminder, status=ReminderStatus.CANCELLED, next_check_at=None)


def delivery_times(
    channels: Iterable[Channel],
    now: datetime,
    *,
    quiet: QuietWindow,
    zone: ZoneInfo,
    deferred: frozenset[Channel],
) -> list[tuple[Channel, datetime]]:
    """When each channel may carry the prompt: quiet hours push deferred channels to their end."""
    return [
        (channel, quiet_hours_end(now, quiet, zone) if channel in deferred else now)
        for channel in channels
    ]
