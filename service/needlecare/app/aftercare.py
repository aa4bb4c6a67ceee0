"""Aftercare: turns sessions and mirror events into reminders, and reminders into deliveries.

Runs on the core thread inside the caller's transaction, so a reminder's state
change and the deliveries it causes are committed together (the outbox).
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from needlecare.app.notifications import notification_json
from needlecare.app.ports import AftercareStore
from needlecare.app.windows import window_event
from needlecare.config import NeedlecareConfig
from needlecare.domain import planning
from needlecare.domain import reminders as rem
from needlecare.domain.localtime import QuietWindow, next_local_midnight, quiet_hours_end
from needlecare.domain.outbox import OutboxItem
from needlecare.domain.planning import PlannedReminder, ProfileContext
from needlecare.domain.protocol import CareProtocol, Channel
from needlecare.domain.reminders import Reminder, ReminderStatus
from needlecare.domain.sessions import Session, needs_aftercare
from needlecare.domain.topics import Topics

log = structlog.get_logger(__name__)

MQTT_CHANNELS = ("mirror",)


@dataclass
class Aftercare:
    """Plans, delivers and answers reminders; remembers which profiles changed."""

    store: AftercareStore
    config: NeedlecareConfig
    topics: Topics
    protocols: dict[str, CareProtocol]
    timing: rem.Timing = field(default_factory=rem.Timing)
    touched: set[str] = field(default_factory=set)

    # -- context ---------------------------------------------------------------

    def profile(self, name: str) -> ProfileContext:
        cfg = self.config.profiles[name]
        return ProfileContext(
            name=name,
            zone=cfg.zone,
            quiet=QuietWindow(cfg.quiet_hours.start, cfg.quiet_hours.end),
        )

    def protocol_for(self, session: Session) -> CareProtocol:
        return self.protocols.get(session.setting, self.protocols["home"])

    def mirrors_for(self, profile: str) -> list[str]:
        return [
            mirror_id
            for mirror_id, mirror in self.config.mirrors.items()
            if not mirror.profiles or profile in mirror.profiles
        ]

    # -- sessions ----------------------------------------------------------------

    def session_saved(self, session: Session, now: datetime) -> None:
        """Plan (or replan) a closed session's aftercare."""
        if session.profile not in self.config.profiles or not needs_aftercare(session):
            return
        plan = planning.plan_session(
            session, self.protocol_for(session), self.profile(session.profile), now
        )
        for planned in plan:
            self._upsert(planned, now)
        self._calendar(session, now)
        self.touched.add(session.profile)

    def _calendar(self, session: Session, now: datetime) -> None:
        """The next-session window as a Home Assistant calendar event, once per session.

        The outbox key is the session's, so replanning never adds a second event.
        """
        ha = self.config.homeassistant
        if ha is None or ha.calendar_entity is None:
            return
        event = window_event(session, self.protocol_for(session))
        payload = {
            "entity_id": ha.calendar_entity,
            "summary": event.summary,
            "description": event.description,
            "start_date_time": event.start.astimezone(
                self.profile(session.profile).zone
            ).isoformat(),
            "end_date_time": event.end.astimezone(self.profile(session.profile).zone).isoformat(),
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

    def session_started(
        self, session: Session, *, event_id: str, depth_limit: float | None, now: datetime
    ) -> None:
        """A new session supersedes older plans; guard against starting too soon or too deep."""
        if session.profile not in self.config.profiles:
            return
        self._supersede(session, now)
        ctx = self.profile(session.profile)
        protocol = self.protocol_for(session)
        previous = self.store.last_treated_session(session.profile, exclude=session.id)
        cleansed = self.store.last_event_at(session.profile, "cleansed")
        guards = [
            planning.too_soon(
                session,
                previous,
                self.protocol_for(previous) if previous else protocol,
                ctx,
                now,
            ),
            planning.depth_limit(session, depth_limit, ctx, protocol, now),
            planning.cleanse_first(
                session,
                last_cleansed_at=cleansed,
                ever_cleansed=cleansed is not None,
                protocol=protocol,
                profile=ctx,
                now=now,
            ),
        ]
        self._raise_guards(guards, now)
        self.touched.add(session.profile)

    def _supersede(self, session: Session, now: datetime) -> None:
        """Older plans give way: waiting steps are cancelled, shown prompts expire."""
        for waiting in self.store.reminders.waiting_for_profile(session.profile):
            if waiting.session_id not in (None, session.id):
                self.store.reminders.save(rem.cancel(waiting))
                self.store.outbox.cancel_for_reminder(waiting.id)
                log.info("reminder_cancelled", reminder_id=waiting.id, superseded_by=session.id)
        for shown in self.store.reminders.delivered(session.profile, now):
            if shown.session_id not in (None, session.id):
                self.store.reminders.save(rem.expire(shown, now))
                self._withdraw(shown, now, "superseded")

    # -- mirror events ---------------------------------------------------------------

    def product_applied(
        self,
        *,
        event_id: str,
        profile: str,
        product: str,
        ingredients: Sequence[str],
        at: datetime,
        now: datetime,
    ) -> None:
        last = self.store.last_treated_session(profile, exclude=None)
        protocol = self.protocol_for(last) if last else self.protocols["home"]
        guard = planning.restricted_product(
            event_id,
            product,
            ingredients,
            last_session=last,
            protocol=protocol,
            profile=self.profile(profile),
            now=now,
            at=at,
        )
        self._raise_guards([guard], now)

    def skin_checked(
        self, *, event_id: str, profile: str, redness: int, at: datetime, now: datetime
    ) -> None:
        last = self.store.last_treated_session(profile, exclude=None)
        protocol = self.protocol_for(last) if last else self.protocols["home"]
        guard = planning.redness_advice(
            event_id,
            redness,
            at=at,
            last_session=last,
            protocol=protocol,
            profile=self.profile(profile),
            now=now,
        )
        self._raise_guards([guard], now)

    def presence(self, *, event_id: str, profile: str, mirror_id: str, now: datetime) -> None:
        """Show the profile's open prompts again on the mirror in front of them."""
        for reminder in self.open_prompts(profile, now):
            self._queue(
                key=f"{reminder.id}:presence:{event_id}:{mirror_id}",
                channel="mirror",
                target=self.topics.mirror_notify(mirror_id),
                reminder=reminder,
                not_before=now,
                now=now,
            )

    # -- answers ---------------------------------------------------------------------

    def acknowledge(self, reminder_id: str, now: datetime, *, profile: str | None = None) -> bool:
        reminder = self.store.reminders.get(reminder_id)
        if reminder is None or (profile is not None and reminder.profile != profile):
            log.warning("reminder_unknown", reminder_id=reminder_id, profile=profile)
            return False
        acked = rem.acknowledge(reminder, now)
        if acked is None:
            return False
        self.store.reminders.save(acked)
        self._withdraw(acked, now, "ack")
        self.touched.add(reminder.profile)
        log.info("reminder_acked", reminder_id=reminder_id, profile=reminder.profile)
        return True

    def acknowledge_all(self, profile: str, now: datetime) -> int:
        answered = [
            r.id
            for r in self.store.reminders.delivered(profile, now)
            + self.store.reminders.waiting_for_profile(profile)
            if r.status is not ReminderStatus.PENDING
        ]
        return sum(self.acknowledge(rid, now) for rid in answered)

    def snooze(
        self, reminder_id: str, minutes: int, now: datetime, *, profile: str | None = None
    ) -> bool:
        reminder = self.store.reminders.get(reminder_id)
        if reminder is None or (profile is not None and reminder.profile != profile):
            log.warning("reminder_unknown", reminder_id=reminder_id, profile=profile)
            return False
        snoozed = rem.snooze(reminder, minutes, now)
        if snoozed is None:
            return False
        self.store.reminders.save(snoozed)
        self.store.outbox.cancel_for_reminder(reminder_id)
        self.touched.add(reminder.profile)
        log.info("reminder_snoozed", reminder_id=reminder_id, until=snoozed.due_at.isoformat())
        return True

    # -- time ---------------------------------------------------------------------------

    def wake(self, now: datetime) -> None:
        """Deliver what is due, escalate what is unanswered, summarise what was missed."""
        missed: dict[str, list[Reminder]] = {}
        for reminder in self.store.reminders.due(now):
            delivered = rem.deliver(reminder, now, self.timing)
            self.store.reminders.save(delivered)
            self.touched.add(reminder.profile)
            if delivered.status is ReminderStatus.MISSED:
                missed.setdefault(reminder.profile, []).append(delivered)
                log.warning(
                    "reminder_missed", reminder_id=reminder.id, due_at=reminder.due_at.isoformat()
                )
                continue
            self._send(delivered, delivered.channels, now, round_key=str(delivered.rounds))
            log.info(
                "reminder_delivered",
                reminder_id=reminder.id,
                kind=reminder.kind,
                status=delivered.status.value,
            )
        for reminder in self.store.reminders.escalations_due(now):
            escalated, channels = rem.escalate(reminder, now)
            self.store.reminders.save(escalated)
            if channels:
                self._send(
                    escalated,
                    channels,
                    now,
                    round_key=f"{escalated.rounds}e{escalated.escalation_level}",
                )
                log.info(
                    "reminder_escalated", reminder_id=reminder.id, level=escalated.escalation_level
                )
        for profile, gone in missed.items():
            self._summarise_missed(profile, gone, now)

    def _summarise_missed(self, profile: str, gone: list[Reminder], now: datetime) -> None:
        summary = planning.missed_summary(
            gone, self.profile(profile), self.protocols["home"], now, ",".join(r.id for r in gone)
        )
        if summary is None or self.store.reminders.get(summary.id) is not None:
            return
        reminder = rem.deliver(rem.from_plan(summary, now), now, self.timing)
        self.store.reminders.save(reminder)
        self._send(reminder, reminder.channels, now, round_key="1")

    def next_wake(self, now: datetime) -> datetime | None:
        """The earliest moment anything reminder-related is due."""
        candidates = [
            self.store.reminders.next_due_at(),
            self.store.reminders.next_check_at(),
            self.store.reminders.next_expiry_after(now),
            self.store.outbox.next_not_before(MQTT_CHANNELS),
        ]
        candidates += [next_local_midnight(now, self.profile(p).zone) for p in self.config.profiles]
        return min((c for c in candidates if c is not None), default=None)

    def release(self, now: datetime, channels: tuple[str, ...]) -> list[OutboxItem]:
        """Outbox items that may go out now (call inside a transaction).

        Quiet hours are checked again here, not only when an item is queued: after
        a long outage an item deferred to this morning must not go out tonight.
        Items of reminders that expired meanwhile are dropped.
        """
        ready = []
        for item in self.store.outbox.ready(now, channels):
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
        ctx = self.profile(item.profile or "")
        end = quiet_hours_end(now, ctx.quiet, ctx.zone)
        return end if end > now else None

    # -- projections --------------------------------------------------------------

    def open_prompts(self, profile: str, now: datetime) -> list[Reminder]:
        return [r for r in self.store.reminders.delivered(profile, now) if r.is_open(now)]

    # -- internals ------------------------------------------------------------------

    def _upsert(self, planned: PlannedReminder, now: datetime) -> None:
        current = self.store.reminders.get(planned.id)
        if current is None:
            self.store.reminders.save(rem.from_plan(planned, now))
            log.info(
                "reminder_planned",
                reminder_id=planned.id,
                kind=planned.kind,
                due_at=planned.due_at.isoformat(),
            )
            return
        updated = rem.replanned(current, planned)
        if updated is not None:
            self.store.reminders.save(updated)
            log.info(
                "reminder_replanned", reminder_id=planned.id, due_at=planned.due_at.isoformat()
            )

    def _raise_guards(self, guards: Iterable[PlannedReminder | None], now: datetime) -> None:
        for guard in guards:
            if guard is None or self.store.reminders.get(guard.id) is not None:
                continue
            reminder = rem.deliver(rem.from_plan(guard, now), now, self.timing)
            self.store.reminders.save(reminder)
            self._send(reminder, reminder.channels, now, round_key="1")
            self.touched.add(guard.profile)
            log.info("guard_raised", reminder_id=guard.id, kind=guard.kind, profile=guard.profile)

    def _send(
        self, reminder: Reminder, channels: Sequence[Channel], now: datetime, *, round_key: str
    ) -> None:
        ctx = self.profile(reminder.profile)
        deferred = frozenset(self.config.profiles[reminder.profile].quiet_hours.defer)
        for channel, not_before in rem.delivery_times(
            channels, now, quiet=ctx.quiet, zone=ctx.zone, deferred=deferred
        ):
            if channel is Channel.MIRROR:
                for mirror_id in self.mirrors_for(reminder.profile):
                    self._queue(
                        key=f"{reminder.id}:{round_key}:mirror:{mirror_id}",
                        channel="mirror",
                        target=self.topics.mirror_notify(mirror_id),
                        reminder=reminder,
                        not_before=not_before,
                        now=now,
                    )
            elif self._has_channel(reminder.profile, channel):
                self._queue(
                    key=f"{reminder.id}:{round_key}:{channel.value}",
                    channel=channel.value,
                    target=reminder.profile,
                    reminder=reminder,
                    not_before=not_before,
                    now=now,
                )
        if self.config.homeassistant is not None:
            # Every delivery is also an event, for the user's own automations.
            self._queue(
                key=f"{reminder.id}:{round_key}:event",
                channel="event",
                target=reminder.profile,
                reminder=reminder,
                not_before=now,
                now=now,
            )

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

    def _withdraw(self, reminder: Reminder, now: datetime, why: str) -> None:
        """Take an answered or outdated prompt off the dashboard and the phone."""
        self.store.outbox.cancel_for_reminder(reminder.id)
        if self.config.homeassistant is None:
            return
        used = {*reminder.channels, *(c for e in reminder.escalation for c in e.channels)}
        for channel, wanted in (("dismiss", Channel.DASHBOARD), ("clear", Channel.MOBILE)):
            if wanted in used and self._has_channel(reminder.profile, wanted):
                self._queue(
                    key=f"{reminder.id}:{why}:{channel}",
                    channel=channel,
                    target=reminder.profile,
                    reminder=reminder,
                    not_before=now,
                    now=now,
                )

    def _queue(
        self,
        *,
        key: str,
        channel: str,
        target: str,
        reminder: Reminder,
        not_before: datetime,
        now: datetime,
    ) -> None:
        self.store.outbox.add(
            OutboxItem(
                key=key,
                channel=channel,
                target=target,
                payload=notification_json(reminder, now),
                not_before=not_before,
                created_at=now,
                reminder_id=reminder.id,
                profile=reminder.profile,
            )
        )
