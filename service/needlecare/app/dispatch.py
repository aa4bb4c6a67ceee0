"""Outbox writing and releasing: which deliveries a reminder makes, and when they may go.

Everything here runs inside the caller's transaction: a reminder's change and
the deliveries it causes commit together.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property

from needlecare.app.notifications import delivery_json, notification_json
from needlecare.app.ports import AftercareStore
from needlecare.app.windows import window_event
from needlecare.config import NeedlecareConfig
from needlecare.domain import planning
from needlecare.domain import reminders as rem
from needlecare.domain.localtime import QuietWindow, quiet_hours_end
from needlecare.domain.outbox import OutboxItem
from needlecare.domain.planning import ProfileContext
from needlecare.domain.protocol import PLAN_STEPS, CareProtocol, Channel, build_protocols
from needlecare.domain.reminders import Reminder
from needlecare.domain.sessions import Session
from needlecare.domain.topics import Topics
from needlecare.i18n import translator

MQTT_CHANNELS = ("mirror",)


def profile_context(config: NeedlecareConfig, name: str) -> ProfileContext:
    cfg = config.profiles[name]
    return ProfileContext(
        name=name,
        zone=cfg.zone,
        quiet=QuietWindow(cfg.quiet_hours.start, cfg.quiet_hours.end),
        language=cfg.language,
        channels=profile_channels(config, name),
    )


def profile_channels(config: NeedlecareConfig, name: str) -> frozenset[Channel]:
    """The channels that exist for profile ``name`` with this config."""
    cfg = config.profiles[name]
    channels = {Channel.MIRROR}  # the retained prompt carries it even with no mirror listed
    if config.homeassistant is not None:
        channels.add(Channel.DASHBOARD)
        if cfg.notify_service is not None:
            channels.add(Channel.MOBILE)
        if cfg.voice is not None:
            channels.add(Channel.VOICE)
    return frozenset(channels)


@dataclass
class Dispatch:
    """Writes deliveries to the outbox and decides when queued ones may go out."""

    store: AftercareStore
    config: NeedlecareConfig
    topics: Topics

    def mirrors_for(self, profile: str) -> list[str]:
        return [
            mirror_id
            for mirror_id, mirror in self.config.mirrors.items()
            if not mirror.profiles or profile in mirror.profiles
        ]

    def send(
        self, reminder: Reminder, channels: Sequence[Channel], now: datetime, *, round_key: str
    ) -> None:
        """Queue one delivery round on the given channels (quiet hours defer some)."""
        ctx = profile_context(self.config, reminder.profile)
        if Channel.VOICE in channels and not reminder.speech:
            reminder = self._with_speech(reminder, ctx)
        deferred = frozenset(self.config.profiles[reminder.profile].quiet_hours.defer)
        for channel, not_before in rem.delivery_times(
            channels, now, quiet=ctx.quiet, zone=ctx.zone, deferred=deferred
        ):
            if channel is Channel.MIRROR:
                for mirror_id in self.mirrors_for(reminder.profile):
                    self.show_on_mirror(reminder, mirror_id, f"{round_key}:mirror", now, not_before)
            elif self._has_channel(reminder.profile, channel):
                self._queue(
                    f"{reminder.id}:{round_key}:{channel.value}",
                    channel.value,
                    reminder,
                    now,
                    not_before,
                )
        if self.config.homeassistant is not None:
            # Every delivery is also an event, for the user's own automations.
            self._queue(f"{reminder.id}:{round_key}:event", "event", reminder, now, now)

    def show_on_mirror(
        self, reminder: Reminder, mirror_id: str, why: str, now: datetime, not_before: datetime
    ) -> None:
        self.store.outbox.add(
            OutboxItem(
                key=f"{reminder.id}:{why}:{mirror_id}",
                channel="mirror",
                target=self.topics.mirror_notify(mirror_id),
                payload=notification_json(reminder, now),
                not_before=not_before,
                created_at=now,
                reminder_id=reminder.id,
                profile=reminder.profile,
            )
        )

    def withdraw(self, reminder: Reminder, now: datetime, why: str) -> None:
        """Take an answered or outdated prompt off the dashboard and the phone."""
        self.store.outbox.cancel_for_reminder(reminder.id)
        used = {*reminder.channels, *(c for e in reminder.escalation for c in e.channels)}
        for channel, wanted in (("dismiss", Channel.DASHBOARD), ("clear", Channel.MOBILE)):
            if wanted in used and self._has_channel(reminder.profile, wanted):
                self._queue(f"{reminder.id}:{why}:{channel}", channel, reminder, now, now)

    def calendar(self, session: Session, protocol: CareProtocol, now: datetime) -> None:
        """The next-session window as a Home Assistant calendar event, once per session.

        The outbox key is the session's, so replanning never adds a second event.
        """
        ha = self.config.homeassistant
        if ha is None or ha.calendar_entity is None:
            return
        profile = self.config.profiles[session.profile]
        event = window_event(session, protocol, translator(profile.language))
        zone = profile.zone
        first = event.start.astimezone(zone).date()
        last = max(event.end.astimezone(zone).date(), first)
        # An all-day event over the window's days in the profile's calendar (the end
        # date is exclusive), as the .ics export writes it; not a two-week appointment.
        payload = {
            "entity_id": ha.calendar_entity,
            "summary": event.summary,
            "description": event.description,
            "start_date": first.isoformat(),
            "end_date": (last + timedelta(days=1)).isoformat(),
        }
        self.store.outbox.add(
            OutboxItem(
                key=f"{session.id}:calendar",
                channel="calendar",
                target=ha.calendar_entity,
                payload=json.dumps(payload),
                not_before=now,
                created_at=now,
                profile=session.profile,
            )
        )

    def release(
        self, now: datetime, channels: tuple[str, ...], limit: int = 200
    ) -> list[OutboxItem]:
        """Outbox items that may go out now (call inside a transaction).

        Quiet hours are checked again here, not only when an item is queued: after
        a long outage an item deferred to this morning must not go out tonight.
        Items of reminders that expired meanwhile are dropped.
        """
        ready = []
        for item in self.store.outbox.ready(now, channels, limit):
            assert item.id is not None  # noqa: S101 - stored items always have one
            reminder = self.store.reminders.get(item.reminder_id) if item.reminder_id else None
            if (
                reminder is not None
                and reminder.expires_at is not None
                and reminder.expires_at <= now
            ):
                self.store.outbox.cancel(item.id)
                continue
            until = self._quiet_until(item, now)
            if until is not None:
                self.store.outbox.postpone(item.id, until)
                continue
            ready.append(item)
        return ready

    def _quiet_until(self, item: OutboxItem, now: datetime) -> datetime | None:
        profile = self.config.profiles.get(item.profile or "")
        if profile is None or item.channel not in profile.quiet_hours.defer:
            return None
        ctx = profile_context(self.config, item.profile or "")
        end = quiet_hours_end(now, ctx.quiet, ctx.zone)
        return end if end > now else None

    @cached_property
    def _protocols(self) -> dict[str, CareProtocol]:
        return build_protocols(self.config.protocol)

    def _with_speech(self, reminder: Reminder, ctx: ProfileContext) -> Reminder:
        """A stored plan step gets its voice text back from its session (it is not stored)."""
        if reminder.kind not in PLAN_STEPS or reminder.session_id is None:
            return reminder
        session = self.store.session(reminder.session_id)
        if session is None or session.ended_at is None:
            return reminder
        protocol = self._protocols.get(session.setting, self._protocols["home"])
        speech = planning.step_speech(session, protocol, ctx, reminder.kind, reminder.due_at)
        return replace(reminder, speech=speech)

    def _has_channel(self, profile: str, channel: Channel) -> bool:
        """Whether this Home Assistant channel is set up for the profile."""
        cfg = self.config.profiles[profile]
        if self.config.homeassistant is None:
            return False
        if channel is Channel.MOBILE:
            return cfg.notify_service is not None
        if channel is Channel.VOICE:
            return cfg.voice is not None
        return channel is Channel.DASHBOARD

    def _queue(
        self, key: str, channel: str, reminder: Reminder, now: datetime, not_before: datetime
    ) -> None:
        self.store.outbox.add(
            OutboxItem(
                key=key,
                channel=channel,
                target=reminder.profile,
                payload=delivery_json(reminder, channel, now),
                not_before=not_before,
                created_at=now,
                reminder_id=reminder.id,
                profile=reminder.profile,
            )
        )
