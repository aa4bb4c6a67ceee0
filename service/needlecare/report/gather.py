"""Read one profile's records from the store and the config into a :class:`Report`."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from needlecare.config import NeedlecareConfig
from needlecare.domain.localtime import QuietWindow
from needlecare.domain.planning import ProfileContext
from needlecare.domain.profile_state import OpenPrompt, ProfileState, profile_state
from needlecare.domain.protocol import CareProtocol, build_protocols
from needlecare.domain.records import ProductRecord, SkinCheckRecord
from needlecare.domain.reminders import Reminder
from needlecare.domain.sessions import Session
from needlecare.i18n import Translator, translator
from needlecare.report.data import (
    ProductView,
    RednessSeries,
    ReminderTally,
    SessionView,
    latest_treated,
    product_views,
    recent,
    redness_series,
    session_views,
    tallies,
)


class ReminderSource(Protocol):
    """The reminder reads the report needs (the store's reminder table)."""

    def listing(self, profile: str | None, status: str | None) -> list[Reminder]: ...


class ReportSource(Protocol):
    """The journal reads the report needs (a read-only ``SqliteStore``)."""

    @property
    def reminders(self) -> ReminderSource: ...
    def sessions(self, profile: str | None = None) -> list[Session]: ...
    def skin_checks(self, profile: str | None = None) -> list[SkinCheckRecord]: ...
    def products(self, profile: str | None = None) -> list[ProductRecord]: ...


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one profile's report shows, as of ``now``."""

    profile: str
    display_name: str
    zone: ZoneInfo
    now: datetime
    state: ProfileState
    protocols: Mapping[str, CareProtocol]
    sessions: tuple[SessionView, ...]
    tallies: tuple[ReminderTally, ...]
    recent: tuple[Reminder, ...]
    redness: tuple[RednessSeries, ...]
    checks_before_any_session: int
    products: tuple[ProductView, ...]
    language: str = "en"

    @property
    def tr(self) -> Translator:
        """The words and formats of the profile's language."""
        return translator(self.language)

    @property
    def empty(self) -> bool:
        """Nothing recorded for the profile at all."""
        recorded = self.sessions or self.tallies or self.redness or self.products
        return not (recorded or self.checks_before_any_session)


def gather(source: ReportSource, config: NeedlecareConfig, profile: str, now: datetime) -> Report:
    """The report of ``profile`` (a configured profile) from ``source`` at ``now``."""
    settings = config.profiles[profile]
    zone = settings.zone
    protocols = build_protocols(config.protocol)
    views = session_views(source.sessions(profile), protocols)
    reminders = source.reminders.listing(profile, None)
    checks = source.skin_checks(profile)
    redness = redness_series(views, checks, protocols, zone)
    context = ProfileContext(
        settings.display_name or profile,
        zone,
        QuietWindow(settings.quiet_hours.start, settings.quiet_hours.end),
        settings.language,
    )
    return Report(
        profile=profile,
        display_name=context.name,
        zone=zone,
        now=now,
        state=_state(context, views, reminders, protocols, now),
        protocols=protocols,
        sessions=views,
        tallies=tallies(reminders, config.reminders.late_after),
        recent=recent(reminders, now),
        redness=redness,
        checks_before_any_session=len(checks) - sum(len(s.points) for s in redness),
        products=product_views(views, source.products(profile), protocols),
        language=settings.language,
    )


def _state(
    context: ProfileContext,
    views: tuple[SessionView, ...],
    reminders: list[Reminder],
    protocols: Mapping[str, CareProtocol],
    now: datetime,
) -> ProfileState:
    last = latest_treated(views)
    session = last.session if last is not None else None
    prompts = [
        OpenPrompt(r.id, r.kind, r.title, r.severity, r.due_at) for r in reminders if r.is_open(now)
    ]
    protocol = protocols[session.setting if session is not None else "home"]
    return profile_state(context, session, protocol, prompts, now)
