"""Session rules as pure functions of the events, the stored state and time.

Nothing here reads a clock or a database: the caller hands in the device's latest
session and gets back the sessions to save.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from needlecare.domain.events import (
    Heartbeat,
    LogSession,
    SessionAborted,
    SessionEnded,
    SessionStarted,
)
from needlecare.domain.sessions import MIN_NEEDLING, Session, SessionStatus, session_id_for


def _with_needling_rule(session: Session, minimum: timedelta) -> Session:
    """A closed session that needled for less than ``minimum`` is recorded as no needling.

    Only the device's reported duration counts: an unknown duration is taken as treated
    (the contract's rule for aborts), so a device clock that is off never drops a plan.
    """
    if session.duration_s is not None and timedelta(seconds=session.duration_s) < minimum:
        return replace(session, status=SessionStatus.NO_NEEDLING)
    return session


DeviceSessionEvent = SessionStarted | SessionEnded | SessionAborted | Heartbeat


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """What the rules need to know about the event besides its payload."""

    device_id: str
    profile: str
    occurred_at: datetime
    min_needling: timedelta = MIN_NEEDLING


def apply_device_event(
    event: DeviceSessionEvent, ctx: DeviceContext, latest: Session | None
) -> list[Session]:
    """The sessions to save after ``event``; ``latest`` is the device's newest session."""
    if isinstance(event, SessionStarted):
        return _start(event, ctx, latest)
    if isinstance(event, Heartbeat):
        return [_seen(latest, ctx.occurred_at)] if latest and latest.is_open else []
    return _finish(event, ctx, latest)


def _start(event: SessionStarted, ctx: DeviceContext, latest: Session | None) -> list[Session]:
    changed = []
    if latest is not None and latest.is_open:
        changed.append(_close(latest, SessionStatus.END_INFERRED, latest.last_seen_at))
    changed.append(
        Session(
            id=session_id_for(event.event_id),
            profile=ctx.profile,
            device_id=ctx.device_id,
            setting=event.setting,
            status=SessionStatus.OPEN,
            started_at=ctx.occurred_at,
            ended_at=None,
            last_seen_at=ctx.occurred_at,
            needle_depth_mm=event.needle_depth_mm,
            zones=event.zones,
            session_ref=event.session_ref,
        )
    )
    return changed


def _finish(
    event: SessionEnded | SessionAborted, ctx: DeviceContext, latest: Session | None
) -> list[Session]:
    status = SessionStatus.ABORTED if isinstance(event, SessionAborted) else SessionStatus.COMPLETED
    voided = _voided_open(event, latest)
    if voided is not None:
        # The open session was voided: its end is noted, and it stays voided.
        return [_close(voided, SessionStatus.VOIDED, ctx.occurred_at)]
    target = _session_to_finish(event, ctx, latest)
    if target is None:
        # An end without a start: the skin was still treated, so record it.
        orphan = _with_needling_rule(_orphan_end(event, ctx, status), ctx.min_needling)
        return (
            [orphan]
            if latest is None or not latest.is_open
            else [
                _close(latest, SessionStatus.END_INFERRED, latest.last_seen_at),
                orphan,
            ]
        )
    finished = _close(target, status, ctx.occurred_at)
    finished = replace(
        finished,
        passes=event.passes if event.passes is not None else finished.passes,
        duration_s=event.duration_s if event.duration_s is not None else finished.duration_s,
    )
    return [_with_needling_rule(finished, ctx.min_needling)]


def _voided_open(event: SessionEnded | SessionAborted, latest: Session | None) -> Session | None:
    """``latest`` if it was voided while open and this end belongs to it."""
    if latest is None or latest.status is not SessionStatus.VOIDED or latest.ended_at is not None:
        return None
    if event.session_ref and latest.session_ref and event.session_ref != latest.session_ref:
        return None
    return latest


def _session_to_finish(
    event: SessionEnded | SessionAborted, ctx: DeviceContext, latest: Session | None
) -> Session | None:
    """The session this end belongs to, if any.

    An open session matches unless both sides name different ``session_ref``s.
    A session the timeout closed as ``end_inferred`` is completed by an end that
    arrives late (events queued on the broker while the daemon was down), so a
    late end never creates a second session.
    """
    if latest is None or latest.started_at is None:
        return None
    if event.session_ref and latest.session_ref and event.session_ref != latest.session_ref:
        return None
    if latest.is_open:
        return latest
    inferred = latest.status is SessionStatus.END_INFERRED and latest.source == "device"
    return latest if inferred and ctx.occurred_at >= latest.started_at else None


def _orphan_end(
    event: SessionEnded | SessionAborted, ctx: DeviceContext, status: SessionStatus
) -> Session:
    started = ctx.occurred_at - timedelta(seconds=event.duration_s) if event.duration_s else None
    return Session(
        id=session_id_for(event.event_id),
        profile=ctx.profile,
        device_id=ctx.device_id,
        setting="home",
        status=status,
        started_at=started,
        ended_at=ctx.occurred_at,
        last_seen_at=ctx.occurred_at,
        session_ref=event.session_ref,
        passes=event.passes,
        duration_s=event.duration_s,
    )


def _seen(session: Session, at: datetime) -> Session:
    return replace(session, last_seen_at=max(session.last_seen_at, at))


def _close(session: Session, status: SessionStatus, at: datetime) -> Session:
    # An end stamped before the start (a device clock off) is clamped to the start.
    start = session.started_at
    ended = max(at, start) if start is not None else at
    return replace(
        session, status=status, ended_at=ended, last_seen_at=max(session.last_seen_at, ended)
    )


def expire_sessions(
    open_sessions: list[Session], timeout: timedelta, now: datetime
) -> list[Session]:
    """Close every open session not seen for ``timeout`` as ``end_inferred``.

    The end is the last-seen time: the skin was treated whether or not the end
    event ever arrives.
    """
    return [
        _close(session, SessionStatus.END_INFERRED, session.last_seen_at)
        for session in open_sessions
        if session.is_open and session.last_seen_at + timeout <= now
    ]


def next_expiry(open_sessions: list[Session], timeout: timedelta) -> datetime | None:
    """When the next open session would time out, if any is open."""
    deadlines = [s.last_seen_at + timeout for s in open_sessions if s.is_open]
    return min(deadlines, default=None)


def logged_session(
    command: LogSession,
    *,
    event_id: str,
    profile: str,
    at: datetime,
    min_needling: timedelta = MIN_NEEDLING,
) -> Session:
    """A session recorded by hand (CLI or the ``log_session`` command)."""
    started = at - timedelta(seconds=command.duration_s) if command.duration_s else at
    session = Session(
        id=session_id_for(event_id),
        profile=profile,
        device_id=None,
        setting=command.setting,
        status=SessionStatus.COMPLETED,
        started_at=started,
        ended_at=at,
        last_seen_at=at,
        source="manual",
        needle_depth_mm=command.needle_depth_mm,
        zones=command.zones,
        duration_s=command.duration_s,
    )
    # Only a stated duration can say that nothing was needled; no duration means treated.
    return session if command.duration_s is None else _with_needling_rule(session, min_needling)
