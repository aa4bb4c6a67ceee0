"""Next-session windows of a profile's treated sessions, for calendars."""

from collections.abc import Callable, Mapping

from needlecare.calendar_export import WindowEvent
from needlecare.domain.planning import window_for
from needlecare.domain.protocol import CareProtocol
from needlecare.domain.sessions import Session, needs_aftercare
from needlecare.i18n import Translator, translator

ENGLISH = translator("en")


def window_event(session: Session, protocol: CareProtocol, tr: Translator = ENGLISH) -> WindowEvent:
    """The calendar event of ``session``'s next-session window, worded in ``tr``'s language."""
    start, end = window_for(session, protocol)
    if session.setting == "professional":
        description = tr.gettext(
            "Next professional session between these dates. Start on clean skin, free of makeup."
        )
    else:
        description = tr.gettext(
            "Next at-home session between these dates. Start on clean skin, free of makeup."
        )
    return WindowEvent(
        uid=f"{session.id}-window@needlecare",
        summary=tr.gettext("Microneedling window ({profile})", profile=session.profile),
        description=description,
        start=start,
        end=end,
    )


def window_events(
    sessions: list[Session],
    protocols: Mapping[str, CareProtocol],
    language_of: Callable[[str], str] = lambda _profile: "en",
) -> list[WindowEvent]:
    """One event per session whose skin was treated, oldest first, each in its profile's
    language (``language_of(profile)``)."""
    return [
        window_event(
            session,
            protocols.get(session.setting, protocols["home"]),
            translator(language_of(session.profile)),
        )
        for session in sessions
        if needs_aftercare(session) and session.ended_at is not None
    ]
