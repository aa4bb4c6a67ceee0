"""Next-session windows of a profile's treated sessions, for calendars."""

from collections.abc import Mapping

from needlecare.calendar_export import WindowEvent
from needlecare.domain.planning import window_for
from needlecare.domain.protocol import CareProtocol
from needlecare.domain.sessions import Session, needs_aftercare

CLEANSE_NOTE = "Start on clean skin, free of makeup."


def window_event(session: Session, protocol: CareProtocol) -> WindowEvent:
    start, end = window_for(session, protocol)
    setting = "professional" if session.setting == "professional" else "at-home"
    return WindowEvent(
        uid=f"{session.id}-window@needlecare",
        summary=f"Microneedling window ({session.profile})",
        description=f"Next {setting} session between these dates. {CLEANSE_NOTE}",
        start=start,
        end=end,
    )


def window_events(
    sessions: list[Session], protocols: Mapping[str, CareProtocol]
) -> list[WindowEvent]:
    """One event per session whose skin was treated, oldest first."""
    return [
        window_event(session, protocols.get(session.setting, protocols["home"]))
        for session in sessions
        if needs_aftercare(session) and session.ended_at is not None
    ]
