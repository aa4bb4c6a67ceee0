"""Reminder transitions: planned, delivered, late or missed, escalated, snoozed, acked."""

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needlecare.domain.localtime import QuietWindow
from needlecare.domain.planning import PlannedReminder
from needlecare.domain.protocol import Channel, Escalation, Severity
from needlecare.domain.reminders import (
    DELIVERED,
    WAITING,
    Reminder,
    ReminderStatus,
    Timing,
    acknowledge,
    back_in_plan,
    cancel,
    deliver,
    delivery_times,
    escalate,
    from_plan,
    passed,
    replanned,
    restored,
    snooze,
)

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietWindow(time(22), time(7))
VOICE_ONLY = frozenset({Channel.VOICE})
DUE = datetime(2026, 3, 5, 19, 0, tzinfo=UTC)  # Thu 5 Mar, 20:00 in Berlin
PLANNED_AT = DUE - timedelta(hours=3)
TIMING = Timing(late_after=timedelta(minutes=2), grace=timedelta(hours=12))
LADDER = (
    Escalation(after=timedelta(minutes=30), channels=(Channel.VOICE,)),
    Escalation(after=timedelta(minutes=45), channels=(Channel.MOBILE, Channel.DASHBOARD)),
    Escalation(after=timedelta(hours=2), channels=(Channel.MOBILE,)),
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def planned(
    *,
    due: datetime = DUE,
    needs_ack: bool = True,
    escalation: tuple[Escalation, ...] = LADDER,
    expires_at: datetime | None = None,
    title: str = "Soothe your skin",
) -> PlannedReminder:
    return PlannedReminder(
        id="rem_1",
        session_id="ses_1",
        profile="alice",
        kind="soothe",
        title=title,
        message="Apply a calming serum.",
        severity=Severity.WARNING,
        channels=(Channel.MIRROR, Channel.DASHBOARD),
        needs_ack=needs_ack,
        due_at=due,
        expires_at=expires_at,
        escalation=escalation,
    )


def pending(**overrides: Any) -> Reminder:
    """A new reminder from ``planned(**overrides)``, planned at ``PLANNED_AT``."""
    return from_plan(planned(**overrides), PLANNED_AT)


def sent(**overrides: Any) -> Reminder:
    """A reminder delivered on time at ``DUE``."""
    return deliver(pending(**overrides), DUE, TIMING)


class TestFromPlan:
    def test_new_reminder_is_pending_at_its_plan(self) -> None:
        """A planned reminder becomes pending, first due when planned, never delivered."""
        reminder = pending()
        assert (ReminderStatus.PENDING, DUE, DUE, 0) == (
            reminder.status,
            reminder.due_at,
            reminder.planned_at,
            reminder.rounds,
        )
        assert (PLANNED_AT, None, None, None, 0) == (
            reminder.created_at,
            reminder.delivered_at,
            reminder.acked_at,
            reminder.next_check_at,
            reminder.escalation_level,
        )

    def test_copies_the_plan(self) -> None:
        """Every field of the plan is carried over unchanged."""
        plan = planned(expires_at=DUE + timedelta(hours=1))
        reminder = from_plan(plan, PLANNED_AT)
        assert (
            plan.id,
            plan.session_id,
            plan.profile,
            plan.kind,
            plan.title,
            plan.message,
            plan.severity,
            plan.channels,
            plan.needs_ack,
            plan.escalation,
            plan.expires_at,
        ) == (
            reminder.id,
            reminder.session_id,
            reminder.profile,
            reminder.kind,
            reminder.title,
            reminder.message,
            reminder.severity,
            reminder.channels,
            reminder.needs_ack,
            reminder.escalation,
            reminder.expires_at,
        )


class TestReplanned:
    def test_pending_follows_the_new_plan(self) -> None:
        """A reminder still waiting for its first delivery takes the new time and text."""
        later = DUE + timedelta(hours=1)
        updated = replanned(pending(), planned(due=later, title="New title"))
        assert updated is not None
        assert (later, later, "New title", ReminderStatus.PENDING) == (
            updated.due_at,
            updated.planned_at,
            updated.title,
            updated.status,
        )

    def test_same_plan_changes_nothing(self) -> None:
        """Planning the same reminder again returns None: nothing to save."""
        assert None is replanned(pending(), planned())

    @pytest.mark.parametrize(
        "reminder",
        [
            pytest.param(sent(), id="delivered"),
            pytest.param(snooze(sent(), 10, DUE), id="snoozed"),
            pytest.param(snooze(pending(), 10, PLANNED_AT), id="snoozed-before-delivery"),
            pytest.param(replace(pending(), rounds=1), id="pending-but-delivered-before"),
            pytest.param(acknowledge(sent(), DUE), id="acked"),
            pytest.param(cancel(pending()), id="cancelled"),
        ],
    )
    def test_what_the_user_has_seen_is_left_alone(self, reminder: Reminder) -> None:
        """Only a pending, never-delivered reminder follows a new plan."""
        assert None is replanned(reminder, planned(due=DUE + timedelta(hours=1)))


class TestDeliver:
    def test_on_time_is_sent(self) -> None:
        """Delivered on time: sent, one round, delivered now."""
        delivered = deliver(pending(), DUE + timedelta(minutes=1), TIMING)
        assert (ReminderStatus.SENT, 1, DUE + timedelta(minutes=1)) == (
            delivered.status,
            delivered.rounds,
            delivered.delivered_at,
        )

    def test_exactly_late_after_is_still_sent(self) -> None:
        """Lateness equal to ``late_after`` is not yet late."""
        delivered = deliver(pending(), DUE + TIMING.late_after, TIMING)
        assert ReminderStatus.SENT == delivered.status

    def test_past_late_after_is_late(self) -> None:
        """Lateness beyond ``late_after`` but within grace: delivered, marked late."""
        now = DUE + timedelta(hours=3)
        delivered = deliver(pending(), now, TIMING)
        assert (ReminderStatus.LATE, 1, now) == (
            delivered.status,
            delivered.rounds,
            delivered.delivered_at,
        )

    def test_exactly_at_grace_is_late(self) -> None:
        """Lateness equal to the grace period is still delivered (late)."""
        delivered = deliver(pending(), DUE + TIMING.grace, TIMING)
        assert ReminderStatus.LATE == delivered.status

    def test_beyond_grace_is_missed(self) -> None:
        """Past the grace period: missed, not delivered, rounds unchanged, no check."""
        reminder = pending()
        missed = deliver(reminder, DUE + TIMING.grace + timedelta(seconds=1), TIMING)
        assert (ReminderStatus.MISSED, None, 0, None) == (
            missed.status,
            missed.delivered_at,
            missed.rounds,
            missed.next_check_at,
        )

    @pytest.mark.parametrize("expires_in", [timedelta(0), timedelta(minutes=-5)])
    def test_expired_is_missed(self, expires_in: timedelta) -> None:
        """A reminder whose prompt has already vanished is missed, even when on time."""
        now = DUE + timedelta(minutes=1)
        missed = deliver(pending(expires_at=now + expires_in), now, TIMING)
        assert (ReminderStatus.MISSED, None, 0) == (
            missed.status,
            missed.delivered_at,
            missed.rounds,
        )

    def test_not_yet_expired_is_delivered(self) -> None:
        """An expiry still ahead does not stop the delivery."""
        delivered = deliver(pending(expires_at=DUE + timedelta(hours=1)), DUE, TIMING)
        assert ReminderStatus.SENT == delivered.status

    def test_second_round_keeps_first_delivery(self) -> None:
        """A snoozed reminder delivered again counts a round and keeps ``delivered_at``."""
        snoozed = snooze(sent(), 15, DUE + timedelta(minutes=5))
        assert snoozed is not None
        again = deliver(snoozed, snoozed.due_at, TIMING)
        assert (ReminderStatus.SENT, 2, DUE) == (again.status, again.rounds, again.delivered_at)

    def test_needs_ack_waits_for_the_first_rung(self) -> None:
        """With a ladder, the first check comes the first rung's ``after`` past delivery."""
        now = DUE + timedelta(minutes=1)
        delivered = deliver(pending(), now, TIMING)
        assert now + LADDER[0].after == delivered.next_check_at

    @pytest.mark.parametrize(
        ("needs_ack", "ladder"),
        [(True, ()), (False, LADDER), (False, ())],
        ids=["no-ladder", "no-ack-needed", "neither"],
    )
    def test_no_check_without_ack_and_ladder(
        self, needs_ack: bool, ladder: tuple[Escalation, ...]
    ) -> None:
        """No escalation check without both an acknowledgement and a ladder."""
        delivered = deliver(pending(needs_ack=needs_ack, escalation=ladder), DUE, TIMING)
        assert None is delivered.next_check_at

    def test_default_timing(self) -> None:
        """The defaults: late after two minutes, given up after twelve hours."""
        assert (timedelta(minutes=2), timedelta(hours=12)) == (
            Timing().late_after,
            Timing().grace,
        )


class TestEscalate:
    def test_climbs_one_rung_per_call(self) -> None:
        """Each call adds the next rung's channels; checks follow the gaps between rungs."""
        reminder = sent()
        first_check = DUE + LADDER[0].after
        assert first_check == reminder.next_check_at

        first, channels = escalate(reminder, first_check)
        assert (1, (Channel.VOICE,)) == (first.escalation_level, channels)
        assert first_check + (LADDER[1].after - LADDER[0].after) == first.next_check_at

        assert first.next_check_at is not None
        second, channels = escalate(first, first.next_check_at)
        assert (2, (Channel.MOBILE, Channel.DASHBOARD)) == (second.escalation_level, channels)
        assert first.next_check_at + (LADDER[2].after - LADDER[1].after) == second.next_check_at

    def test_last_rung_clears_the_check(self) -> None:
        """Climbing onto the last rung sends its channels and schedules nothing more."""
        reminder = replace(sent(), escalation_level=len(LADDER) - 1)
        top, channels = escalate(reminder, DUE + timedelta(hours=2))
        assert (len(LADDER), LADDER[-1].channels, None) == (
            top.escalation_level,
            channels,
            top.next_check_at,
        )

    def test_at_the_top_nothing_more(self) -> None:
        """Past the last rung: no channels, no further check, level unchanged."""
        reminder = replace(
            sent(), escalation_level=len(LADDER), next_check_at=DUE + timedelta(hours=3)
        )
        top, channels = escalate(reminder, DUE + timedelta(hours=3))
        assert ((), None, len(LADDER)) == (channels, top.next_check_at, top.escalation_level)

    def test_late_reminder_escalates(self) -> None:
        """A late delivery is still unanswered and escalates like a timely one."""
        late = deliver(pending(), DUE + timedelta(hours=1), TIMING)
        escalated, channels = escalate(late, DUE + timedelta(hours=2))
        assert (1, (Channel.VOICE,)) == (escalated.escalation_level, channels)

    @pytest.mark.parametrize(
        "reminder",
        [
            pytest.param(acknowledge(sent(), DUE), id="acked"),
            pytest.param(snooze(sent(), 10, DUE), id="snoozed"),
            pytest.param(pending(), id="pending"),
            pytest.param(cancel(sent()), id="cancelled"),
            pytest.param(deliver(pending(), DUE + timedelta(days=1), TIMING), id="missed"),
        ],
    )
    def test_undelivered_does_not_escalate(self, reminder: Reminder) -> None:
        """Only a delivered, unanswered reminder escalates; others just drop the check."""
        stale = replace(reminder, next_check_at=DUE + timedelta(hours=1))
        escalated, channels = escalate(stale, DUE + timedelta(hours=1))
        assert ((), None, reminder.escalation_level, reminder.status) == (
            channels,
            escalated.next_check_at,
            escalated.escalation_level,
            escalated.status,
        )


class TestAcknowledge:
    @pytest.mark.parametrize(
        "reminder",
        [
            pytest.param(sent(), id="sent"),
            pytest.param(deliver(pending(), DUE + timedelta(hours=1), TIMING), id="late"),
            pytest.param(snooze(sent(), 10, DUE), id="snoozed"),
            pytest.param(pending(), id="pending"),
        ],
    )
    def test_acked(self, reminder: Reminder) -> None:
        """Acknowledging records when, and stops any escalation."""
        now = DUE + timedelta(minutes=7)
        acked = acknowledge(reminder, now)
        assert acked is not None
        assert (ReminderStatus.ACKED, now, None) == (
            acked.status,
            acked.acked_at,
            acked.next_check_at,
        )

    @pytest.mark.parametrize(
        "reminder",
        [
            pytest.param(acknowledge(sent(), DUE), id="acked"),
            pytest.param(cancel(pending()), id="cancelled"),
        ],
    )
    def test_nothing_to_acknowledge(self, reminder: Reminder) -> None:
        """An already answered or cancelled reminder gives None."""
        assert None is acknowledge(reminder, DUE + timedelta(hours=1))

    def test_second_ack_keeps_the_first_time(self) -> None:
        """A repeated ack is refused, so the first ``acked_at`` stands."""
        acked = acknowledge(sent(), DUE + timedelta(minutes=1))
        assert acked is not None
        assert (None, DUE + timedelta(minutes=1)) == (
            acknowledge(acked, DUE + timedelta(minutes=9)),
            acked.acked_at,
        )


class TestSnooze:
    def test_snoozed_until_later(self) -> None:
        """Snoozed: due again ``minutes`` from now, escalation starts over."""
        now = DUE + timedelta(minutes=40)
        escalated, _ = escalate(sent(), DUE + timedelta(minutes=30))
        assert 1 == escalated.escalation_level
        snoozed = snooze(escalated, 25, now)
        assert snoozed is not None
        assert (ReminderStatus.SNOOZED, now + timedelta(minutes=25), 0, None) == (
            snoozed.status,
            snoozed.due_at,
            snoozed.escalation_level,
            snoozed.next_check_at,
        )

    def test_keeps_rounds_and_first_plan(self) -> None:
        """Snoozing moves ``due_at`` only: the plan and the delivery history stay."""
        snoozed = snooze(sent(), 10, DUE + timedelta(minutes=1))
        assert snoozed is not None
        assert (DUE, DUE, 1) == (snoozed.planned_at, snoozed.delivered_at, snoozed.rounds)

    @pytest.mark.parametrize(
        "reminder",
        [
            pytest.param(acknowledge(sent(), DUE), id="acked"),
            pytest.param(cancel(pending()), id="cancelled"),
            pytest.param(deliver(pending(), DUE + timedelta(days=1), TIMING), id="missed"),
        ],
    )
    def test_closed_cannot_be_snoozed(self, reminder: Reminder) -> None:
        """An acked, cancelled or missed reminder gives None."""
        assert None is snooze(reminder, 10, DUE + timedelta(hours=1))


class TestBackInPlan:
    """Steps left aside that a recomputed plan may take back (after a void, a late end)."""

    def test_passed_step_is_missed_and_was_never_shown(self) -> None:
        missed = passed(planned(), PLANNED_AT)
        assert (ReminderStatus.MISSED, 0, None) == (
            missed.status,
            missed.rounds,
            missed.delivered_at,
        )
        assert back_in_plan(missed)

    @pytest.mark.parametrize(
        ("reminder", "expected"),
        [
            pytest.param(cancel(pending()), True, id="cancelled"),
            pytest.param(cancel(sent()), True, id="cancelled after shown"),
            pytest.param(pending(), False, id="pending"),
            pytest.param(sent(), False, id="sent"),
            pytest.param(deliver(pending(), DUE + timedelta(days=2), TIMING), True, id="missed"),
        ],
    )
    def test_what_may_come_back(self, reminder: Reminder, expected: bool) -> None:
        assert expected == back_in_plan(reminder)

    def test_never_shown_comes_back_fresh_at_the_planned_time(self) -> None:
        later = planned(due=DUE + timedelta(days=1))
        back = restored(cancel(pending()), later, DUE)
        assert (ReminderStatus.PENDING, later.due_at, 0) == (back.status, back.due_at, back.rounds)
        assert PLANNED_AT == back.created_at

    def test_shown_before_comes_back_as_a_new_round(self) -> None:
        shown = sent()
        back = restored(cancel(shown), planned(), DUE + timedelta(hours=1))
        assert (ReminderStatus.SNOOZED, shown.rounds) == (back.status, back.rounds)
        again = deliver(back, DUE + timedelta(hours=1), TIMING)
        assert shown.rounds + 1 == again.rounds


class TestCancel:
    @pytest.mark.parametrize(
        "reminder",
        [pytest.param(pending(), id="pending"), pytest.param(sent(), id="sent")],
    )
    def test_cancelled(self, reminder: Reminder) -> None:
        """Cancelled: kept for the record with no check scheduled."""
        cancelled = cancel(reminder)
        assert (ReminderStatus.CANCELLED, None, reminder.due_at) == (
            cancelled.status,
            cancelled.next_check_at,
            cancelled.due_at,
        )


class TestIsOpen:
    @pytest.mark.parametrize(
        ("reminder", "expected"),
        [
            pytest.param(sent(), True, id="sent"),
            pytest.param(deliver(pending(), DUE + timedelta(hours=1), TIMING), True, id="late"),
            pytest.param(pending(), False, id="pending"),
            pytest.param(snooze(sent(), 10, DUE), False, id="snoozed"),
            pytest.param(acknowledge(sent(), DUE), False, id="acked"),
            pytest.param(cancel(sent()), False, id="cancelled"),
            pytest.param(deliver(pending(), DUE + timedelta(days=1), TIMING), False, id="missed"),
        ],
    )
    def test_only_delivered_prompts_are_open(self, reminder: Reminder, expected: bool) -> None:
        """Open means delivered (sent or late) and unanswered."""
        assert expected == reminder.is_open(DUE + timedelta(hours=2))

    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (DUE + timedelta(minutes=59), True),
            (DUE + timedelta(hours=1), False),
            (DUE + timedelta(hours=2), False),
        ],
    )
    def test_open_until_it_expires(self, now: datetime, expected: bool) -> None:
        """A prompt with an expiry is open until (not at) its expiry."""
        reminder = sent(expires_at=DUE + timedelta(hours=1))
        assert expected == reminder.is_open(now)


class TestDeliveryTimes:
    CHANNELS = (Channel.MIRROR, Channel.VOICE, Channel.DASHBOARD)

    def times(self, now: datetime) -> list[tuple[Channel, datetime]]:
        return delivery_times(self.CHANNELS, now, quiet=NIGHT, zone=BERLIN, deferred=VOICE_ONLY)

    @pytest.mark.parametrize(
        ("now", "end"),
        [
            pytest.param(utc(2026, 3, 5, 21), utc(2026, 3, 6, 6), id="22:00-start"),
            pytest.param(utc(2026, 3, 5, 22, 30), utc(2026, 3, 6, 6), id="before-midnight"),
            pytest.param(utc(2026, 3, 6, 1), utc(2026, 3, 6, 6), id="after-midnight"),
            pytest.param(utc(2026, 3, 28, 22, 30), utc(2026, 3, 29, 5), id="spring-evening"),
            pytest.param(utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 5), id="spring-before-gap"),
            pytest.param(utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 5), id="spring-after-gap"),
            pytest.param(utc(2026, 10, 24, 22, 30), utc(2026, 10, 25, 6), id="autumn-night"),
            pytest.param(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 6), id="autumn-first-2:30"),
            pytest.param(utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 6), id="autumn-second-2:30"),
        ],
    )
    def test_deferred_channels_wait_for_the_end_of_quiet_hours(
        self, now: datetime, end: datetime
    ) -> None:
        """Inside quiet hours voice waits for 07:00 local; the other channels go now."""
        expected = [(Channel.MIRROR, now), (Channel.VOICE, end), (Channel.DASHBOARD, now)]
        assert expected == self.times(now)

    def test_spring_forward_night_ends_at_seven_local(self) -> None:
        """Across 29 Mar 2026 (CET to CEST) the night still ends at 07:00 wall time."""
        voice = dict(self.times(utc(2026, 3, 28, 23)))[Channel.VOICE]
        assert (utc(2026, 3, 29, 5), time(7)) == (voice, voice.astimezone(BERLIN).time())

    @pytest.mark.parametrize(
        "now",
        [
            pytest.param(utc(2026, 3, 5, 18), id="evening"),
            pytest.param(utc(2026, 3, 5, 20, 59), id="21:59"),
            pytest.param(utc(2026, 3, 6, 6), id="07:00-end"),
            pytest.param(utc(2026, 3, 29, 5), id="07:00-after-spring-forward"),
        ],
    )
    def test_outside_quiet_hours_nothing_moves(self, now: datetime) -> None:
        """Outside quiet hours every channel, deferred or not, goes now."""
        assert [(channel, now) for channel in self.CHANNELS] == self.times(now)

    def test_nothing_deferred_nothing_moves(self) -> None:
        """Without deferred channels quiet hours change nothing."""
        now = utc(2026, 3, 5, 23)
        times = delivery_times(self.CHANNELS, now, quiet=NIGHT, zone=BERLIN, deferred=frozenset())
        assert [(channel, now) for channel in self.CHANNELS] == times

    def test_no_channels(self) -> None:
        """No channels, no delivery times."""
        times = delivery_times(
            (), utc(2026, 3, 5, 23), quiet=NIGHT, zone=BERLIN, deferred=VOICE_ONLY
        )
        assert [] == times


# One operation on the reminder: its name and a number of minutes (lateness, snooze
# length or time passing), as the scheduler and the user would apply them.
_operations = st.lists(
    st.tuples(
        st.sampled_from(["deliver", "snooze", "escalate", "ack"]),
        # Small numbers often, so deliveries are on time as well as late or missed.
        st.one_of(st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=840)),
    ),
    max_size=30,
)


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(
        operations=_operations,
        needs_ack=st.booleans(),
        rungs=st.integers(min_value=0, max_value=len(LADDER)),
        expires_after=st.one_of(st.none(), st.integers(min_value=1, max_value=24 * 60)),
    )
    def test_invariants_hold_for_any_sequence(
        self,
        operations: list[tuple[str, int]],
        needs_ack: bool,
        rungs: int,
        expires_after: int | None,
    ) -> None:
        """Rounds never drop, an ack is final, checks exist only while delivered."""
        expires_at = None if expires_after is None else DUE + timedelta(minutes=expires_after)
        reminder = pending(needs_ack=needs_ack, escalation=LADDER[:rungs], expires_at=expires_at)
        now = PLANNED_AT
        for name, minutes in operations:
            before = reminder
            reminder, now = _apply(reminder, name, minutes, now)
            assert reminder.rounds >= before.rounds
            assert reminder.status in set(ReminderStatus)
            if reminder.status not in DELIVERED:
                assert None is reminder.next_check_at
            if before.status is ReminderStatus.ACKED:
                assert (None, None) == (acknowledge(before, now), snooze(before, 5, now))
                assert ReminderStatus.ACKED == reminder.status


def _apply(reminder: Reminder, name: str, minutes: int, now: datetime) -> tuple[Reminder, datetime]:
    """``reminder`` after operation ``name``, and the clock after it (never backwards).

    ``deliver`` is applied the way the scheduler does: only to a waiting reminder,
    ``minutes`` after its due time; ``escalate`` at its check time when it has one.
    """
    if name == "deliver":
        if reminder.status not in WAITING:
            return reminder, now
        now = max(now, reminder.due_at + timedelta(minutes=minutes))
        return deliver(reminder, now, TIMING), now
    if name == "escalate":
        now = max(now, reminder.next_check_at or now + timedelta(minutes=minutes))
        return escalate(reminder, now)[0], now
    now += timedelta(minutes=minutes)
    if name == "snooze":
        return snooze(reminder, minutes % 1440 + 1, now) or reminder, now
    return acknowledge(reminder, now) or reminder, now
