"""Aftercare: turns sessions and mirror events into reminders, and reminders into deliveries.

Runs on the core thread inside the caller's transaction, so a reminder's state
change and the deliveries it causes are committed together (the outbox).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from needlecare.app.dispatch import MQTT_CHANNELS, Dispatch, profile_context
from needlecare.app.ports import AftercareStore
from needlecare.app.todo import TodoList
from needlecare.config import NeedlecareConfig
from needlecare.domain import planning
from needlecare.domain import reminders as rem
from needlecare.domain.localtime import next_local_midnight
from needlecare.domain.outbox import OutboxItem
from needlecare.domain.planning import PlannedReminder, ProfileContext
from needlecare.domain.protocol import PLAN_STEPS, CareProtocol
from needlecare.domain.reminders import Reminder, ReminderStatus
from needlecare.domain.sessions import Session
from needlecare.domain.topics import Topics
from needlecare.logs import get_logger

log = get_logger(__name__)


@dataclass
class Aftercare:
    """Plans, delivers and answers reminders; remembers which profiles changed."""

    store: AftercareStore
    config: NeedlecareConfig
    topics: Topics
    protocols: dict[str, CareProtocol]
    timing: rem.Timing = field(default_factory=rem.Timing)
    touched: set[str] = field(default_factory=set)
    _woken_at: datetime | None = field(default=None, init=False)

    # -- context ---------------------------------------------------------------

    def __post_init__(self) -> None:
        self.dispatch = Dispatch(self.store, self.config, self.topics)
        self.todo = TodoList(self.store, self.config)

    def profile(self, name: str) -> ProfileContext:
        return profile_context(self.config, name)

    def protocol_for(self, session: Session) -> CareProtocol:
        return self.protocols.get(session.setting, self.protocols["home"])

    def release(
        self, now: datetime, channels: tuple[str, ...], limit: int = 200
    ) -> list[OutboxItem]:
        """Outbox items that may go out now (inside a transaction); see Dispatch.release."""
        return self.dispatch.release(now, channels, limit)

    # -- sessions ----------------------------------------------------------------

    def session_saved(self, session: Session, now: datetime) -> None:
        """A session was recorded or changed: the profile's plan follows its newest session."""
        if session.profile not in self.config.profiles:
            return
        current = self._reconcile(session.profile, now)
        if current is not None and current.id == session.id:
            self.dispatch.calendar(session, self.protocol_for(session), now)

    def session_voided(self, session: Session, now: datetime) -> None:
        """A session logged by mistake: its reminders go, the remaining sessions' plan returns."""
        if session.profile not in self.config.profiles:
            return
        for reminder in self.store.reminders.for_session(session.id):
            if reminder.status in rem.WAITING or reminder.is_open(now):
                self._cancel(reminder, now, why="voided")
        self._reconcile(session.profile, now)

    def session_started(
        self, session: Session, *, event_id: str, depth_limit: float | None, now: datetime
    ) -> None:
        """Guard against starting too soon or too deep; the plan waits for the session's end.

        A start that turns out to be a false start (no needling) must leave the
        earlier plan as it was, so nothing is superseded until the session closes.
        """
        if session.profile not in self.config.profiles:
            return
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

    def _reconcile(self, profile: str, now: datetime) -> Session | None:
        """Make the profile's plan the plan of its newest treated session, and only that.

        The plan is a function of the surviving sessions alone: steps of any other
        session give way (cancelled, and withdrawn where they were shown), and the
        newest session's steps are placed, or restored if an earlier change cancelled
        them. A status, not an expiry time, so a clock set back cannot revive them.
        """
        current = self.store.last_treated_session(profile, exclude=None)
        keep = None if current is None else current.id
        # Only plan steps are read: a profile may have many guard prompts on display.
        waiting = self.store.reminders.waiting_for_profile(profile)
        shown = self.store.reminders.delivered(profile, now, PLAN_STEPS)
        for reminder in waiting + shown:
            if _plan_step_of_other(reminder, keep):
                self._cancel(reminder, now, why="superseded", by=keep)
        self.touched.add(profile)
        if current is None:
            return None
        protocol, ctx = self.protocol_for(current), self.profile(profile)
        upcoming, gone_by = planning.split_plan(current, protocol, ctx, now)
        changed = [step for step in upcoming if self._upsert(step, now)]
        self.todo.planned(changed, now)
        passed = [step for step in gone_by if self._record_passed(step, now)]
        if changed or passed:
            # One line per plan: the reminders themselves are in `needlecare reminders`.
            log.info(
                "aftercare_planned",
                session_id=current.id,
                profile=profile,
                reminders=[f"{p.kind}@{p.due_at.isoformat()}" for p in changed],
                passed=[p.kind for p in passed],
            )
        return current

    def _cancel(
        self, reminder: Reminder, now: datetime, *, why: str, by: str | None = None
    ) -> None:
        """Cancel a waiting or shown reminder everywhere: its pending deliveries, the
        mirror, the retained prompt, Home Assistant and the to-do list."""
        self.store.reminders.save(rem.cancel(reminder))
        if reminder.status in rem.DELIVERED:
            self.dispatch.withdraw(reminder, now, why)  # its pending deliveries go too
        else:
            self.store.outbox.cancel_for_reminder(reminder.id)
        self.todo.removed(reminder, now)
        log.info("reminder_cancelled", reminder_id=reminder.id, why=why, by=by)

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
            self.dispatch.show_on_mirror(reminder, mirror_id, f"presence:{event_id}", now, now)

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
        self.dispatch.withdraw(acked, now, "ack")
        self.todo.checked(acked, now)
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
        self._note_expiries(now)
        missed: dict[str, list[Reminder]] = {}
        for reminder in self.store.reminders.due(now):
            delivered = rem.deliver(reminder, now, self.timing)
            if delivered.status is ReminderStatus.MISSED:
                self.store.reminders.save(delivered)
                self.touched.add(reminder.profile)
                missed.setdefault(reminder.profile, []).append(delivered)
                log.warning(
                    "reminder_missed", reminder_id=reminder.id, due_at=reminder.due_at.isoformat()
                )
                continue
            self._send(delivered, now)
        for reminder in self.store.reminders.escalations_due(now):
            escalated, channels = rem.escalate(reminder, now)
            self.store.reminders.save(escalated)
            if channels:
                self.dispatch.send(
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

    def _note_expiries(self, now: datetime) -> None:
        """A prompt that vanished by itself since the last wake changes its profile's state."""
        since, self._woken_at = self._woken_at, now
        if since is None:
            return
        for reminder in self.store.reminders.expired_between(since, now):
            self.touched.add(reminder.profile)

    def _send(self, delivered: Reminder, now: datetime) -> None:
        """Save a reminder just delivered (sent or late) and queue it on its channels."""
        self.store.reminders.save(delivered)
        self.touched.add(delivered.profile)
        self.dispatch.send(delivered, delivered.channels, now, round_key=str(delivered.rounds))
        log.info(
            "reminder_delivered",
            reminder_id=delivered.id,
            kind=delivered.kind,
            status=delivered.status.value,
        )

    def _summarise_missed(self, profile: str, gone: list[Reminder], now: datetime) -> None:
        summary = planning.missed_summary(
            gone, self.profile(profile), self.protocols["home"], now, ",".join(r.id for r in gone)
        )
        if summary is None or self.store.reminders.get(summary.id) is not None:
            return
        reminder = rem.deliver(rem.from_plan(summary, now), now, self.timing)
        self.store.reminders.save(reminder)
        self.dispatch.send(reminder, reminder.channels, now, round_key="1")

    def next_wake(self, now: datetime, *, outbox: bool = True) -> datetime | None:
        """The earliest moment anything reminder-related is due (local midnights aside).

        ``outbox=False`` leaves out the mirror's outbox, for a caller that knows which
        of its items are already on their way (``MqttOutbox.next_wake``).
        """
        candidates = [
            self.store.reminders.next_due_at(),
            self.store.reminders.next_check_at(),
            self.store.reminders.next_expiry_after(now),
        ]
        if outbox:
            candidates.append(self.store.outbox.next_not_before(MQTT_CHANNELS))
        return min((c for c in candidates if c is not None), default=None)

    def next_midnight(self, now: datetime) -> datetime | None:
        """The next local midnight of any profile: their recovery days change then."""
        return min(
            (next_local_midnight(now, self.profile(p).zone) for p in self.config.profiles),
            default=None,
        )

    # -- projections --------------------------------------------------------------

    def open_prompts(self, profile: str, now: datetime) -> list[Reminder]:
        return [r for r in self.store.reminders.delivered(profile, now) if r.is_open(now)]

    # -- internals ------------------------------------------------------------------

    def _upsert(self, planned: PlannedReminder, now: datetime) -> bool:
        """Store a planned reminder, or move an existing one; whether anything changed."""
        current = self.store.reminders.get(planned.id)
        if current is None:
            fresh = rem.from_plan(planned, now)
            log.debug("reminder_planned", reminder_id=planned.id, due_at=planned.due_at.isoformat())
            delivered = rem.deliver(fresh, now, self.timing) if fresh.due_at <= now else fresh
            if delivered.status in rem.DELIVERED:
                # Due at once (a soothe at the session's end): delivered as wake() would in
                # this turn, with one write instead of a pending row that wake() reads back
                # and rewrites before the prompt can go out. A missed one waits for wake(),
                # which summarises it.
                self._send(delivered, now)
            else:
                self.store.reminders.save(fresh)
            return True
        if rem.back_in_plan(current):
            self.store.reminders.save(rem.restored(current, planned, now))
            log.debug("reminder_restored", reminder_id=planned.id)
            return True
        updated = rem.replanned(current, planned)
        if updated is None:
            return False
        self.store.reminders.save(updated)
        log.debug("reminder_replanned", reminder_id=planned.id, due_at=planned.due_at.isoformat())
        return True

    def _record_passed(self, planned: PlannedReminder, now: datetime) -> bool:
        """A step whose time went by before its session was known: kept as missed, unannounced."""
        current = self.store.reminders.get(planned.id)
        if current is not None and not rem.back_in_plan(current):
            return False
        self.store.reminders.save(rem.passed(planned, now))
        return True

    def _raise_guards(self, guards: Iterable[PlannedReminder | None], now: datetime) -> None:
        for guard in guards:
            if guard is None or self.store.reminders.get(guard.id) is not None:
                continue
            reminder = rem.deliver(rem.from_plan(guard, now), now, self.timing)
            self.store.reminders.save(reminder)
            self.dispatch.send(reminder, reminder.channels, now, round_key="1")
            self.touched.add(guard.profile)
            log.info("guard_raised", reminder_id=guard.id, kind=guard.kind, profile=guard.profile)


def _plan_step_of_other(reminder: Reminder, session_id: str | None) -> bool:
    """A plan step (not a guard) that belongs to a session other than ``session_id``."""
    return (
        reminder.session_id is not None
        and reminder.session_id != session_id
        and reminder.kind in PLAN_STEPS
    )
