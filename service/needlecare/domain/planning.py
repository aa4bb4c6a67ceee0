"""Planning: the reminders a session's aftercare needs, and the immediate guards.

Pure functions of (session, protocol, profile, now). Ids derive from the session or
the triggering event, so planning again, or a redelivered trigger, yields the same
reminders rather than duplicates.
"""

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeGuard
from zoneinfo import ZoneInfo

from needlecare.domain.localtime import QuietWindow, local_date, local_datetime
from needlecare.domain.protocol import (
    PLAN_STEPS,
    CareProtocol,
    Channel,
    Escalation,
    Severity,
    Step,
    ingredient_classes,
)
from needlecare.domain.protocol_defaults import default_steps
from needlecare.domain.sessions import Session, needs_aftercare
from needlecare.i18n import render, spoken, translator
from needlecare.i18n.render import Value

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_DEFAULT_STEPS = default_steps()


@dataclass(frozen=True, slots=True)
class PlannedReminder:
    """One prompt to deliver at ``due_at`` (UTC)."""

    id: str
    session_id: str | None
    profile: str
    kind: str
    title: str
    message: str
    severity: Severity
    channels: tuple[Channel, ...]
    needs_ack: bool
    due_at: datetime
    expires_at: datetime | None
    escalation: tuple[Escalation, ...]
    # What a voice says: written to be heard, in the profile's language. Derived from
    # the shown text and the same values, so it takes no part in comparisons.
    speech: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class ProfileContext:
    """What planning needs to know about the person: name, time zone, quiet hours, and
    the language (a supported BCP 47 primary tag) every prompt text is written in."""

    name: str
    zone: ZoneInfo
    quiet: QuietWindow
    language: str = "en"
    # The channels set up for this person (no voice without a voice service, no
    # dashboard or phone without Home Assistant); None: every channel.
    channels: frozenset[Channel] | None = None


class MissedReminder(Protocol):
    """Anything with the fields the missed summary lists (a stored reminder will do)."""

    @property
    def kind(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def due_at(self) -> datetime: ...


def reminder_id(*parts: str) -> str:
    """A stable id from ``parts``: the same parts always give the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return "rem_" + digest[:16]


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with known ``{name}`` placeholders replaced.

    A user's message may hold unknown placeholders or stray braces; they stay as
    written instead of failing the whole plan as ``str.format`` would.
    """
    return _PLACEHOLDER.sub(lambda match: values.get(match[1], match[0]), template)


def window_for(session: Session, protocol: CareProtocol) -> tuple[datetime, datetime]:
    """When the next-session window opens and closes after ``session`` (UTC)."""
    end = _end(session)
    return end + protocol.window_open_after, end + protocol.window_close_after


def recovery_day(last_end: datetime, now: datetime, zone: ZoneInfo) -> int:
    """Local calendar days since the session end: 0 on the day itself, never negative."""
    return max(0, (local_date(now, zone) - local_date(last_end, zone)).days)


def plan_session(
    session: Session, protocol: CareProtocol, profile: ProfileContext, now: datetime
) -> list[PlannedReminder]:
    """The aftercare reminders of a closed session that needs aftercare, by due time.

    Steps already due more than ``plan_grace`` ago (a session logged days later)
    and prompts that would already have vanished are left out: see ``split_plan``.
    """
    return [r for r in _all_steps(session, protocol, profile) if not _passed(r, protocol, now)]


def split_plan(
    session: Session, protocol: CareProtocol, profile: ProfileContext, now: datetime
) -> tuple[list[PlannedReminder], list[PlannedReminder]]:
    """``plan_session``'s steps, and the ones it leaves out: too long past to announce."""
    upcoming: list[PlannedReminder] = []
    passed: list[PlannedReminder] = []
    for step in _all_steps(session, protocol, profile):
        (passed if _passed(step, protocol, now) else upcoming).append(step)
    return upcoming, passed


def _all_steps(
    session: Session, protocol: CareProtocol, profile: ProfileContext
) -> list[PlannedReminder]:
    if session.ended_at is None or not needs_aftercare(session):
        return []
    values = session_values(session, protocol, profile.zone, profile.name)
    planned = []
    for name in PLAN_STEPS:
        step = protocol.step(name)
        if not step.enabled:
            continue
        due = step_due(step, session, protocol, profile.zone)
        rid = reminder_id(session.id, step.kind)
        planned.append(
            _reminder(step, rid, session_id=session.id, profile=profile, due=due, values=values)
        )
    return sorted(planned, key=lambda reminder: reminder.due_at)


def _passed(reminder: PlannedReminder, protocol: CareProtocol, now: datetime) -> bool:
    expired = reminder.expires_at is not None and reminder.expires_at <= now
    return expired or reminder.due_at < now - protocol.plan_grace


def step_speech(
    session: Session, protocol: CareProtocol, profile: ProfileContext, kind: str, due: datetime
) -> str:
    """The voice text of plan step ``kind`` of ``session``, as planning writes it.

    Voice texts are not stored with a reminder; a plan step read back from the store
    gets its own again from the session it belongs to.
    """
    values = session_values(session, protocol, profile.zone, profile.name)
    step = protocol.step(kind)
    written = _reminder(step, "", session_id=session.id, profile=profile, due=due, values=values)
    return written.speech


def step_due(step: Step, session: Session, protocol: CareProtocol, zone: ZoneInfo) -> datetime:
    """When a plan step of ``session`` is due, in UTC."""
    end = _end(session)
    if step.kind == "actives_resume":
        return end + protocol.actives_pause
    if step.offset is not None:
        return end + step.offset
    if step.day is None or step.at is None:
        msg = f"step {step.kind} has no time of its own"
        raise ValueError(msg)
    return local_datetime(local_date(end, zone) + timedelta(days=step.day), step.at, zone)


def session_values(
    session: Session, protocol: CareProtocol, zone: ZoneInfo, profile: str
) -> dict[str, Value]:
    """Placeholder values every step of ``session`` may use; moments become local text
    in the profile's language when the prompt is written (``zone`` is kept for callers)."""
    start, end = window_for(session, protocol)
    return {
        "profile": profile,
        "until": _end(session) + protocol.actives_pause,
        "window_start": start,
        "window_end": end,
    }


def too_soon(
    started: Session,
    previous: Session | None,
    protocol_for_previous: CareProtocol,
    profile: ProfileContext,
    now: datetime,
) -> PlannedReminder | None:
    """A warning when ``started`` began before the window after ``previous`` opened."""
    if started.started_at is None or not _treated(previous) or previous.id == started.id:
        return None
    window_start, _ = window_for(previous, protocol_for_previous)
    if started.started_at >= window_start:
        return None
    values = session_values(previous, protocol_for_previous, profile.zone, profile.name)
    return _guard(
        "too_soon",
        started.id,
        session_id=started.id,
        protocol=protocol_for_previous,
        profile=profile,
        now=now,
        values=values,
    )


def depth_limit(
    started: Session,
    limit_mm: float | None,
    profile: ProfileContext,
    protocol: CareProtocol,
    now: datetime,
) -> PlannedReminder | None:
    """A warning when ``started`` reports a needle depth above the device's limit."""
    depth = started.needle_depth_mm
    if limit_mm is None or depth is None or depth <= limit_mm:
        return None
    values: dict[str, Value] = {"depth": float(depth), "limit": float(limit_mm)}
    return _guard(
        "depth_limit",
        started.id,
        session_id=started.id,
        protocol=protocol,
        profile=profile,
        now=now,
        values=values,
    )


def restricted_product(
    event_id: str,
    product: str,
    ingredients: Iterable[str],
    *,
    last_session: Session | None,
    protocol: CareProtocol,
    profile: ProfileContext,
    now: datetime,
    at: datetime | None = None,
) -> PlannedReminder | None:
    """A warning when a product applied at ``at`` (default ``now``) inside the actives
    pause holds a restricted ingredient class; the product name counts too."""
    if not _treated(last_session):
        return None
    applied = now if at is None else at
    end = _end(last_session)
    if not end <= applied < end + protocol.actives_pause:
        return None
    classes = ingredient_classes((product, *ingredients), protocol)
    if not classes:
        return None
    values = session_values(last_session, protocol, profile.zone, profile.name)
    values |= {"product": product, "ingredients": classes}
    return _guard(
        "restricted_product",
        event_id,
        session_id=last_session.id,
        protocol=protocol,
        profile=profile,
        now=now,
        values=values,
    )


def redness_advice(
    event_id: str,
    redness: int,
    *,
    at: datetime,
    last_session: Session | None,
    protocol: CareProtocol,
    profile: ProfileContext,
    now: datetime,
) -> PlannedReminder | None:
    """Advice when a skin check at ``at`` is still red late in the recovery, before
    the next window opens."""
    if not _treated(last_session) or redness < protocol.redness_threshold:
        return None
    window_start, _ = window_for(last_session, protocol)
    day = recovery_day(_end(last_session), at, profile.zone)
    if at < _end(last_session) or at >= window_start or day < protocol.redness_after_day:
        return None
    values = session_values(last_session, protocol, profile.zone, profile.name)
    values |= {"redness": redness, "day": day}
    return _guard(
        "redness_advice",
        event_id,
        session_id=last_session.id,
        protocol=protocol,
        profile=profile,
        now=now,
        values=values,
    )


def cleanse_first(
    started: Session,
    *,
    last_cleansed_at: datetime | None,
    ever_cleansed: bool,
    protocol: CareProtocol,
    profile: ProfileContext,
    now: datetime,
) -> PlannedReminder | None:
    """A reminder to cleanse when a session starts without a recent ``cleansed`` event.

    Only for profiles whose mirror has ever reported a cleanse: without that
    support every session would look uncleansed.
    """
    start = started.started_at or now
    recent = last_cleansed_at is not None and (
        start - protocol.cleanse_within <= last_cleansed_at <= start
    )
    if not ever_cleansed or recent:
        return None
    return _guard(
        "cleanse_first",
        started.id,
        session_id=started.id,
        protocol=protocol,
        profile=profile,
        now=now,
        values={},
    )


def missed_summary(
    missed: Sequence[MissedReminder],
    profile: ProfileContext,
    protocol: CareProtocol,
    now: datetime,
    summary_key: str,
) -> PlannedReminder | None:
    """One prompt listing the reminders missed while the daemon was down.

    ``summary_key`` names the occasion (e.g. the start-up), so it is summarised once.
    """
    if not missed:
        return None
    ordered = sorted(missed, key=lambda reminder: reminder.due_at)
    tr = translator(profile.language)
    lines = [
        tr.gettext("{title} ({due})", title=item.title, due=tr.when(item.due_at, profile.zone))
        for item in ordered
    ]
    # Translators: separates the missed prompts of a list (each "title (time)"); a
    # separator, not a sentence's "and".
    separator = tr.gettext("; ")
    values: dict[str, Value] = {"missed": separator.join(lines), "count": len(ordered)}
    return _guard(
        "missed_summary",
        summary_key,
        session_id=None,
        protocol=protocol,
        profile=profile,
        now=now,
        values=values,
    )


def _guard(
    name: str,
    trigger_id: str,
    *,
    session_id: str | None,
    protocol: CareProtocol,
    profile: ProfileContext,
    now: datetime,
    values: Mapping[str, Value],
) -> PlannedReminder | None:
    step = protocol.step(name)
    if not step.enabled:
        return None
    values = {"profile": profile.name, **values}
    rid = reminder_id(trigger_id, step.kind)
    return _reminder(step, rid, session_id=session_id, profile=profile, due=now, values=values)


def _treated(session: Session | None) -> TypeGuard[Session]:
    return session is not None and session.ended_at is not None and needs_aftercare(session)


def _reminder(
    step: Step,
    rid: str,
    *,
    session_id: str | None,
    profile: ProfileContext,
    due: datetime,
    values: Mapping[str, Value],
) -> PlannedReminder:
    due = due.astimezone(UTC)
    tr = translator(profile.language)
    shown = render.shown(values, tr, profile.zone)
    title = fill(tr.text(step.title), shown)
    message = fill(tr.text(step.message), shown)
    built_in = _built_in(step)
    speech = spoken.speech(
        step.kind,
        title=title,
        message=message,
        values=render.heard(values, tr, profile.zone, due) if built_in else {},
        tr=tr,
        built_in=built_in,
    )
    return PlannedReminder(
        id=rid,
        session_id=session_id,
        profile=profile.name,
        kind=step.kind,
        title=title,
        message=message,
        severity=step.severity,
        channels=_available(step.channels, profile),
        needs_ack=step.needs_ack,
        due_at=due,
        expires_at=due + step.expires_after if step.expires_after is not None else None,
        escalation=_escalation(step.escalation, profile),
        speech=speech,
    )


def _available(channels: tuple[Channel, ...], profile: ProfileContext) -> tuple[Channel, ...]:
    """``channels`` that exist for ``profile``: a reminder lists only where it can go."""
    if profile.channels is None:
        return channels
    return tuple(c for c in channels if c in profile.channels)


def _escalation(ladder: tuple[Escalation, ...], profile: ProfileContext) -> tuple[Escalation, ...]:
    """The escalation rungs that still add an available channel."""
    kept = ((rung, _available(rung.channels, profile)) for rung in ladder)
    return tuple(
        rung
        if len(channels) == len(rung.channels)
        else rung.model_copy(update={"channels": channels})
        for rung, channels in kept
        if channels
    )


def _built_in(step: Step) -> bool:
    """Whether ``step`` still says what the built-in protocol says (its voice text fits)."""
    default = _DEFAULT_STEPS.get(step.kind)
    return default is not None and (default.title, default.message) == (step.title, step.message)


def _end(session: Session) -> datetime:
    if session.ended_at is None:
        msg = f"session {session.id} has not ended"
        raise ValueError(msg)
    return session.ended_at.astimezone(UTC)
