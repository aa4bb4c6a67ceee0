"""The session rules, as pure functions with a fake clock."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needlecare.domain.events import (
    DEVICE_EVENTS,
    LogSession,
    SessionAborted,
    SessionEnded,
    SessionStarted,
)
from needlecare.domain.session_rules import (
    DeviceContext,
    apply_device_event,
    expire_sessions,
    logged_session,
    next_expiry,
)
from needlecare.domain.sessions import Session, SessionStatus, needs_aftercare, session_id_for

T0 = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
TIMEOUT = timedelta(hours=2)


def ctx(minutes: float = 0, device: str = "pen1") -> DeviceContext:
    return DeviceContext(device, "alice", T0 + timedelta(minutes=minutes))


def started(event_id: str = "s1", **fields: object) -> SessionStarted:
    return SessionStarted.model_validate(
        {"event_id": event_id, "type": "session_started", **fields}
    )


def ended(event_id: str = "e1", **fields: object) -> SessionEnded:
    return SessionEnded.model_validate({"event_id": event_id, "type": "session_ended", **fields})


def aborted(event_id: str = "a1", **fields: object) -> SessionAborted:
    return SessionAborted.model_validate(
        {"event_id": event_id, "type": "session_aborted", **fields}
    )


class TestStart:
    def test_start_opens_a_session(self) -> None:
        """A start with nothing open opens one session at the event time."""
        [session] = apply_device_event(started(needle_depth_mm=0.5), ctx(), None)
        assert SessionStatus.OPEN == session.status
        assert T0 == session.started_at
        assert 0.5 == session.needle_depth_mm
        assert session_id_for("s1") == session.id

    def test_start_while_open_infers_the_old_end(self) -> None:
        """A second start closes the open session as end_inferred at its last-seen time."""
        [first] = apply_device_event(started("s1"), ctx(), None)
        closed, second = apply_device_event(started("s2"), ctx(30), first)
        assert SessionStatus.END_INFERRED == closed.status
        assert T0 == closed.ended_at
        assert SessionStatus.OPEN == second.status
        assert T0 + timedelta(minutes=30) == second.started_at


class TestEnd:
    def test_end_completes_the_open_session(self) -> None:
        """An end closes the open session with its details."""
        [opened] = apply_device_event(started(), ctx(), None)
        [done] = apply_device_event(ended(passes=4, duration_s=900), ctx(15), opened)
        assert SessionStatus.COMPLETED == done.status
        assert (opened.id, 4, 900) == (done.id, done.passes, done.duration_s)
        assert T0 + timedelta(minutes=15) == done.ended_at

    def test_end_without_start_records_a_session_of_unknown_start(self) -> None:
        """An end with nothing open records a session whose start is unknown."""
        [orphan] = apply_device_event(ended(), ctx(10), None)
        assert (SessionStatus.COMPLETED, None) == (orphan.status, orphan.started_at)

    def test_end_without_start_derives_the_start_from_the_duration(self) -> None:
        """A duration lets the start be worked out."""
        [orphan] = apply_device_event(ended(duration_s=600), ctx(10), None)
        assert T0 == orphan.started_at

    def test_end_for_another_session_ref_leaves_an_inferred_end(self) -> None:
        """An end naming a different session_ref does not finish the open session."""
        [opened] = apply_device_event(started(session_ref="A"), ctx(), None)
        closed, orphan = apply_device_event(ended(session_ref="B"), ctx(5), opened)
        assert SessionStatus.END_INFERRED == closed.status
        assert ("B", None) == (orphan.session_ref, orphan.started_at)

    def test_late_end_completes_a_timed_out_session(self) -> None:
        """An end queued while the daemon was down completes the inferred session."""
        [opened] = apply_device_event(started(), ctx(), None)
        [inferred] = expire_sessions([opened], TIMEOUT, T0 + timedelta(hours=5))
        [done] = apply_device_event(ended(), ctx(20), inferred)
        assert (opened.id, SessionStatus.COMPLETED) == (done.id, done.status)
        assert T0 + timedelta(minutes=20) == done.ended_at

    def test_end_stamped_before_start_is_clamped(self) -> None:
        """A device clock running backwards never yields an end before the start."""
        [opened] = apply_device_event(started(), ctx(10), None)
        [done] = apply_device_event(ended(), ctx(0), opened)
        assert done.started_at == done.ended_at


class TestAbort:
    def test_abort_closes_as_aborted(self) -> None:
        """An abort closes the open session as aborted."""
        [opened] = apply_device_event(started(), ctx(), None)
        [done] = apply_device_event(aborted(duration_s=300), ctx(6), opened)
        assert SessionStatus.ABORTED == done.status

    @pytest.mark.parametrize(
        ("duration", "expected"), [(None, True), (0, False), (59, False), (60, True), (900, True)]
    )
    def test_aftercare_after_abort_needs_needling(
        self, duration: int | None, expected: bool
    ) -> None:
        """Aftercare applies to an aborted session unless nothing was needled."""
        [opened] = apply_device_event(started(), ctx(), None)
        [done] = apply_device_event(aborted(duration_s=duration), ctx(1), opened)
        assert expected == needs_aftercare(done)


class TestFalseStart:
    """A session that needled for less than the minimum (60 s) treated nothing."""

    @pytest.mark.parametrize("end", [ended, aborted])
    def test_zero_duration_end_is_recorded_as_no_needling(self, end: Any) -> None:
        [opened] = apply_device_event(started(), ctx(), None)
        [done] = apply_device_event(end(duration_s=0), ctx(0.1), opened)
        assert SessionStatus.NO_NEEDLING == done.status
        assert not needs_aftercare(done)

    def test_unknown_duration_counts_as_treated(self) -> None:
        """Without a reported duration the skin is taken as treated, however short it looks."""
        [opened] = apply_device_event(started(), ctx(), None)
        [done] = apply_device_event(ended(), ctx(0.5), opened)
        assert SessionStatus.COMPLETED == done.status

    def test_minimum_is_configurable(self) -> None:
        [opened] = apply_device_event(started(), ctx(), None)
        strict = DeviceContext("pen1", "alice", T0 + timedelta(minutes=3), timedelta(minutes=5))
        [done] = apply_device_event(ended(duration_s=240), strict, opened)
        assert SessionStatus.NO_NEEDLING == done.status

    def test_orphan_end_with_zero_duration(self) -> None:
        [done] = apply_device_event(ended(duration_s=0), ctx(), None)
        assert SessionStatus.NO_NEEDLING == done.status

    def test_logged_session_with_zero_duration(self) -> None:
        command = LogSession.model_validate({"action": "log_session", "duration_s": 0})
        session = logged_session(command, event_id="c1", profile="alice", at=T0)
        assert SessionStatus.NO_NEEDLING == session.status
        untimed = LogSession.model_validate({"action": "log_session"})
        assert (
            SessionStatus.COMPLETED
            == logged_session(untimed, event_id="c2", profile="alice", at=T0).status
        )


class TestVoidedWhileOpen:
    def test_end_of_a_voided_open_session_is_noted_and_it_stays_voided(self) -> None:
        [opened] = apply_device_event(started(session_ref="r1"), ctx(), None)
        voided = replace(opened, status=SessionStatus.VOIDED)
        [done] = apply_device_event(ended(session_ref="r1", duration_s=900), ctx(15), voided)
        assert (SessionStatus.VOIDED, opened.id) == (done.status, done.id)
        assert T0 + timedelta(minutes=15) == done.ended_at
        assert not needs_aftercare(done)

    def test_end_of_another_session_is_not_absorbed(self) -> None:
        [opened] = apply_device_event(started(session_ref="r1"), ctx(), None)
        voided = replace(opened, status=SessionStatus.VOIDED)
        [done] = apply_device_event(ended(session_ref="r2", duration_s=900), ctx(15), voided)
        assert done.id != opened.id
        assert SessionStatus.COMPLETED == done.status


class TestTimeout:
    def test_quiet_session_is_closed_at_last_seen(self) -> None:
        """No end after the timeout: closed end_inferred at the last-seen time."""
        [opened] = apply_device_event(started(), ctx(), None)
        beat = DEVICE_EVENTS.validate_python({"event_id": "h", "type": "heartbeat"})
        [seen] = apply_device_event(beat, ctx(30), opened)
        assert [] == expire_sessions([seen], TIMEOUT, T0 + timedelta(minutes=149))
        [closed] = expire_sessions([seen], TIMEOUT, T0 + timedelta(minutes=150))
        assert (SessionStatus.END_INFERRED, T0 + timedelta(minutes=30)) == (
            closed.status,
            closed.ended_at,
        )

    def test_next_expiry_is_the_earliest_deadline(self) -> None:
        """The next wake-up is the earliest last-seen plus the timeout."""
        [a] = apply_device_event(started("a"), ctx(0, "pen1"), None)
        [b] = apply_device_event(started("b"), ctx(10, "pen2"), None)
        assert T0 + TIMEOUT == next_expiry([b, a], TIMEOUT)
        assert next_expiry([], TIMEOUT) is None


class TestLoggedSession:
    def test_logged_professional_session(self) -> None:
        """A session logged by hand is complete, manual and keeps its setting."""
        command = LogSession.model_validate(
            {"action": "log_session", "setting": "professional", "duration_s": 1800}
        )
        session = logged_session(command, event_id="cmd-1", profile="alice", at=T0)
        assert ("professional", "manual", SessionStatus.COMPLETED) == (
            session.setting,
            session.source,
            session.status,
        )
        assert T0 - timedelta(minutes=30) == session.started_at


# -- properties over random event orders -----------------------------------------

_kinds = st.sampled_from(["session_started", "session_ended", "session_aborted", "heartbeat"])
_steps = st.lists(
    st.tuples(
        st.sampled_from(["pen1", "pen2"]),
        _kinds,
        st.integers(0, 300),  # minutes since T0
        st.booleans(),  # whether the sweep runs before this event
        st.integers(0, 5),  # which earlier event to redeliver, if any
    ),
    max_size=40,
)


class Journal:
    """A fake of the store's session table, enough for the rules."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.order: list[str] = []
        self.seen: set[str] = set()

    def latest(self, device: str) -> Session | None:
        mine = [self.sessions[i] for i in self.order if self.sessions[i].device_id == device]
        return mine[-1] if mine else None

    def save(self, session: Session) -> None:
        if session.id not in self.sessions:
            self.order.append(session.id)
        self.sessions[session.id] = session

    def feed(self, event_id: str, device: str, kind: str, minute: int) -> None:
        if event_id in self.seen:
            return  # the store's unique event_id: a duplicate is ignored
        self.seen.add(event_id)
        event = DEVICE_EVENTS.validate_python({"event_id": event_id, "type": kind})
        for session in apply_device_event(event, ctx(minute, device), self.latest(device)):
            self.save(session)


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(_steps)
    def test_never_two_open_sessions_per_device(
        self, steps: list[tuple[str, str, int, bool, int]]
    ) -> None:
        """Whatever the order of events and sweeps, a device has at most one open session."""
        journal = Journal()
        for n, (device, kind, minute, sweep, _) in enumerate(steps):
            if sweep:
                now = T0 + timedelta(minutes=minute)
                open_now = [s for s in journal.sessions.values() if s.is_open]
                for closed in expire_sessions(open_now, TIMEOUT, now):
                    journal.save(closed)
            journal.feed(f"ev{n}", device, kind, minute)
            for pen in ("pen1", "pen2"):
                mine = [s for s in journal.sessions.values() if s.device_id == pen and s.is_open]
                assert len(mine) <= 1

    @settings(max_examples=300, deadline=None)
    @given(_steps)
    def test_duplicates_never_change_anything(
        self, steps: list[tuple[str, str, int, bool, int]]
    ) -> None:
        """Redelivering earlier events leaves the journal exactly as without them."""
        plain, noisy = Journal(), Journal()
        history: list[tuple[str, str, str, int]] = []
        for n, (device, kind, minute, _, back) in enumerate(steps):
            plain.feed(f"ev{n}", device, kind, minute)
            noisy.feed(f"ev{n}", device, kind, minute)
            history.append((f"ev{n}", device, kind, minute))
            noisy.feed(*history[max(0, len(history) - 1 - back)])
        assert plain.sessions == noisy.sessions
        assert plain.order == noisy.order
