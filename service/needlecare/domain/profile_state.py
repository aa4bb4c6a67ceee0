"""A profile's current standing in the care cycle (the PRODUCT §2 state JSON).

Pure: the caller passes the latest treated session, the protocol that applies to it
and the open prompts the store knows about.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from needlecare.domain.localtime import next_local_midnight
from needlecare.domain.planning import ProfileContext, recovery_day, window_for
from needlecare.domain.protocol import CareProtocol, Severity
from needlecare.domain.sessions import Session, needs_aftercare

Status = Literal["no_history", "recovering", "resting", "due", "overdue"]


@dataclass(frozen=True)
class Restriction:
    """Ingredient classes to avoid until ``until`` (UTC)."""

    name: str
    until: datetime
    ingredients: tuple[str, ...]


@dataclass(frozen=True)
class OpenPrompt:
    """A reminder that is delivered and neither acknowledged nor expired."""

    id: str
    kind: str
    title: str
    severity: Severity
    due_at: datetime
    message: str = ""
    expires_at: datetime | None = None


ACTIONS = ("ack", "snooze")
"""What a person can do with an open prompt (the notification's ``actions``)."""


@dataclass(frozen=True)
class ProfileState:
    """Where a profile stands; the window and recovery day are None without history.

    ``display_name`` is the name people read (the config's, else the profile slug);
    ``language`` the profile's language (a supported BCP 47 primary tag, e.g. "de"),
    which a mirror uses for the words around the person's prompts.
    """

    profile: str
    status: Status
    last_session_at: datetime | None
    recovery_day: int | None
    restrictions: tuple[Restriction, ...]
    next_window_start: datetime | None
    next_window_end: datetime | None
    open_prompts: tuple[OpenPrompt, ...]
    display_name: str | None = None
    language: str = "en"


def profile_state(
    profile: ProfileContext,
    last_session: Session | None,
    protocol_for_last: CareProtocol,
    open_prompts: Iterable[OpenPrompt],
    now: datetime,
    *,
    display_name: str | None = None,
) -> ProfileState:
    """The state at ``now``: recovering inside the actives pause, resting until the
    next window opens, due inside it, overdue after it closes.

    ``last_session`` is the latest session that needs aftercare; an open session
    or one that needled nothing counts as no history.
    """
    prompts = tuple(sorted(open_prompts, key=lambda prompt: (prompt.due_at, prompt.id)))
    end = _treated_end(last_session)
    if last_session is None or end is None:
        return ProfileState(
            profile.name,
            "no_history",
            None,
            None,
            (),
            None,
            None,
            prompts,
            display_name,
            profile.language,
        )
    pause_end = end + protocol_for_last.actives_pause
    window_start, window_end = window_for(last_session, protocol_for_last)
    restrictions = _restrictions(protocol_for_last, pause_end, now)
    return ProfileState(
        profile=profile.name,
        status=_status(now, pause_end, window_start, window_end),
        last_session_at=end,
        recovery_day=recovery_day(end, now, profile.zone),
        restrictions=restrictions,
        next_window_start=window_start,
        next_window_end=window_end,
        open_prompts=prompts,
        display_name=display_name,
        language=profile.language,
    )


def _restrictions(
    protocol: CareProtocol, pause_end: datetime, now: datetime
) -> tuple[Restriction, ...]:
    if now >= pause_end:
        return ()
    # A class configured with no synonyms is switched off, so it restricts nothing.
    classes = tuple(name for name, words in protocol.restricted_ingredients.items() if words)
    return (Restriction("actives_pause", pause_end, classes),)


def _status(now: datetime, pause_end: datetime, start: datetime, end: datetime) -> Status:
    if now < pause_end:
        return "recovering"
    if now < start:
        return "resting"
    return "due" if now < end else "overdue"


def _treated_end(session: Session | None) -> datetime | None:
    if session is None or session.ended_at is None or not needs_aftercare(session):
        return None
    return session.ended_at.astimezone(UTC)


def next_state_change(
    profile: ProfileContext,
    last_session: Session | None,
    protocol_for_last: CareProtocol,
    now: datetime,
) -> datetime | None:
    """When the state computed at ``now`` next changes by time alone, in UTC.

    Status changes at the pause end and the window edges; the recovery day at
    every local midnight. None without history: nothing changes until a session.
    """
    end = _treated_end(last_session)
    if last_session is None or end is None:
        return None
    start, close = window_for(last_session, protocol_for_last)
    edges = (end + protocol_for_last.actives_pause, start, close)
    return min(next_local_midnight(now, profile.zone), *(edge for edge in edges if edge > now))


def to_json(state: ProfileState) -> dict[str, object]:
    """The state as the retained ``needlecare/profile/<profile>/state`` payload."""
    return {
        "profile": state.profile,
        "display_name": state.display_name or state.profile,
        "language": state.language,
        "status": state.status,
        "last_session_at": rfc3339(state.last_session_at),
        "recovery_day": state.recovery_day,
        "restrictions": [
            {"name": r.name, "until": rfc3339(r.until), "ingredients": list(r.ingredients)}
            for r in state.restrictions
        ],
        "next_window_start": rfc3339(state.next_window_start),
        "next_window_end": rfc3339(state.next_window_end),
        "open_prompts": [_prompt_json(p) for p in state.open_prompts],
    }


def _prompt_json(prompt: OpenPrompt) -> dict[str, object]:
    """One open prompt, with what a mirror needs to show it and answer it."""
    return {
        "id": prompt.id,
        "reminder_id": prompt.id,
        "kind": prompt.kind,
        "title": prompt.title,
        "message": prompt.message,
        "severity": str(prompt.severity),
        "due_at": rfc3339(prompt.due_at),
        "expires_at": rfc3339(prompt.expires_at),
        "actions": list(ACTIONS),
    }


def rfc3339(moment: datetime | None) -> str | None:
    """``moment`` as an RFC 3339 UTC string ending in ``Z``; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
