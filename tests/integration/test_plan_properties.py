"""The care plan is right for every sequence of events: invariants as properties.

Random lives of two people (a device each, a mirror, commands): starts, ends and
aborts with any duration, duplicates, out-of-order and back-dated timestamps, hand
logs, voids, acks, snoozes, restarts, clock jumps both ways and a daylight-saving
change, driven through the daemon's ingest and aftercare on a real SQLite file with a
fake clock. After every step:

- at most one waiting ``window_open`` and one waiting ``overdue`` per profile;
- ``overdue`` is planned after ``window_open``;
- no plan step is due before its session ended;
- the plan equals the plan computed from the surviving sessions alone: every waiting
  or shown plan step belongs to the newest treated session, and each of that
  session's steps still ahead is waiting at its planned time (unless the person has
  already seen it, before a late end moved the session);
- a restart at any point changes nothing.
"""

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from needlecare.app.dispatch import profile_context
from needlecare.app.inbound import InboundMessage
from needlecare.config import NeedlecareConfig
from needlecare.domain import planning
from needlecare.domain.protocol import PLAN_STEPS, build_protocols
from needlecare.domain.reminders import DELIVERED, WAITING, ReminderStatus
from needlecare.domain.sessions import Session, needs_aftercare
from needlecare_integrations.store import SqliteStore
from support.clock import JumpClock
from support.core_sim import Sim

pytestmark = pytest.mark.integration

# Two days before Europe's spring-forward (29 March 2026); New York has changed already.
START = datetime(2026, 3, 27, 18, 0, tzinfo=UTC)
CONFIG = NeedlecareConfig.model_validate(
    {
        "homeassistant": {"url": "http://127.0.0.1:1"},  # so HA channels get outbox rows
        "profiles": {
            "alice": {"timezone": "Europe/Berlin"},
            "bob": {"timezone": "America/New_York"},
        },
        "devices": {"pen1": {"owner": "alice"}, "pen2": {"owner": "bob"}},
        "mirrors": {"hallway": {}},
    }
)
PROTOCOLS = build_protocols(None)
OWNER = {"pen1": "alice", "pen2": "bob"}
DURATIONS = (None, 0, 30, 59, 60, 900)
PROFILES = st.sampled_from(["alice", "bob"])
DEVICES = st.sampled_from(["pen1", "pen2"])
DURATION = st.sampled_from(DURATIONS)

ACTIONS = st.one_of(
    st.tuples(st.just("start"), DEVICES, st.integers(0, 3), st.integers(0, 90)),
    st.tuples(st.sampled_from(["end", "abort"]), DEVICES, st.integers(0, 3), DURATION),
    st.tuples(st.just("dup")),
    st.tuples(st.just("log"), PROFILES, st.integers(0, 60 * 24 * 60), DURATION),
    st.tuples(st.just("void"), PROFILES, st.integers(0, 9)),
    st.tuples(st.sampled_from(["ack", "snooze"]), PROFILES, st.integers(1, 300)),
    st.tuples(st.just("wait"), st.integers(1, 60 * 24 * 40)),
    st.tuples(st.just("down"), st.integers(1, 60 * 24 * 5)),
    st.tuples(st.just("restart")),
    st.tuples(st.just("jump"), st.integers(-180, 180)),
)


class Life:
    """A Sim plus what the properties need: the last payload sent, the latest time seen."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.last: InboundMessage | None = None
        self.seen_until = sim.clock.now()

    @property
    def now(self) -> datetime:
        return self.sim.clock.now()

    def send(self, topic: str, body: dict[str, Any]) -> None:
        self.sim.seq += 1
        payload = json.dumps({"event_id": f"ev{self.sim.seq}", **body}).encode()
        self.deliver(InboundMessage(topic, payload, self.now))

    def deliver(self, message: InboundMessage) -> None:
        message = InboundMessage(message.topic, message.payload, self.now)
        self.sim.ingest.handle([message], self.now)
        self.sim.settle()
        self.last = message

    def stamp(self, minutes_ago: float) -> str:
        return (self.now - timedelta(minutes=minutes_ago)).isoformat()

    def act(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind in ("start", "end", "abort", "dup"):
            self._device(action)
        elif kind in ("log", "void", "ack", "snooze"):
            self._command(action)
        else:
            self._time(action)
        self.seen_until = max(self.seen_until, self.now)

    def _device(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind == "start":
            _, device, ref, minutes_ago = action
            self.send(
                f"needlecare/device/{device}/event",
                {
                    "type": "session_started",
                    "session_ref": f"r{ref}",
                    "timestamp": self.stamp(minutes_ago),
                },
            )
        elif kind in ("end", "abort"):
            _, device, ref, duration = action
            body: dict[str, Any] = {
                "type": "session_ended" if kind == "end" else "session_aborted",
                "session_ref": f"r{ref}",
            }
            if duration is not None:
                body["duration_s"] = duration
            self.send(f"needlecare/device/{device}/event", body)
        elif self.last is not None:
            self.deliver(self.last)

    def _command(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind == "log":
            _, profile, minutes_ago, duration = action
            body = {"action": "log_session", "timestamp": self.stamp(minutes_ago)}
            if duration is not None:
                body["duration_s"] = duration
            self.send(f"needlecare/profile/{profile}/command", body)
        elif kind == "void":
            _, profile, index = action
            sessions = self.sim.store.sessions(profile)
            if sessions:
                chosen = sessions[index % len(sessions)]
                self.send(
                    f"needlecare/profile/{profile}/command",
                    {"action": "void_session", "session_id": chosen.id, "reason": "test"},
                )
        elif kind in ("ack", "snooze"):
            _, profile, minutes = action
            open_ids = self.sim.open_reminder_ids(profile)
            if open_ids:
                body = {"action": kind, "reminder_id": open_ids[minutes % len(open_ids)]}
                if kind == "snooze":
                    body["minutes"] = minutes
                self.send(f"needlecare/profile/{profile}/command", body)

    def _time(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind == "wait":
            self.sim.run_until(self.now + timedelta(minutes=action[1]))
        elif kind == "down":
            self.sim.down_until(self.now + timedelta(minutes=action[1]))
        elif kind == "restart":
            self.restart_changes_nothing()
        elif kind == "jump":
            self.sim.clock.set(self.now + timedelta(minutes=action[1]))
            self.sim.settle()

    def restart_changes_nothing(self) -> None:
        before = self.snapshot()
        self.sim.boot()
        assert before == self.snapshot(), "a restart changed the plan"

    def snapshot(self) -> tuple[object, ...]:
        store = self.sim.store
        reminders = [
            (r.id, r.status, r.due_at, r.expires_at) for r in store.reminders.listing(None, None)
        ]
        outbox = [(item.key, item.not_before) for item in store.outbox.listing()]
        sessions = [(s.id, s.status, s.ended_at) for s in store.sessions()]
        return (reminders, outbox, sessions)


def newest_treated(sessions: list[Session]) -> Session | None:
    """The plan's session from the journal alone: the newest treated one (later seq wins ties)."""
    treated = [s for s in sessions if needs_aftercare(s) and s.ended_at is not None]
    best: Session | None = None
    for session in treated:  # in seq order
        assert session.ended_at is not None
        if best is None or (best.ended_at is not None and session.ended_at >= best.ended_at):
            best = session
    return best


def check(life: Life) -> None:
    store, now = life.sim.store, life.now
    for profile in CONFIG.profiles:
        sessions = {s.id: s for s in store.sessions(profile)}
        reminders = [r for r in store.reminders.listing(profile, None) if r.kind in PLAN_STEPS]
        waiting = [r for r in reminders if r.status in WAITING]
        kinds = [r.kind for r in waiting]
        assert kinds.count("window_open") <= 1, f"{profile}: two waiting window_open"
        assert kinds.count("overdue") <= 1, f"{profile}: two waiting overdue"

        by_session: dict[str | None, dict[str, datetime]] = {}
        for reminder in reminders:
            if reminder.status is not ReminderStatus.CANCELLED:
                by_session.setdefault(reminder.session_id, {})[reminder.kind] = reminder.planned_at
            session = sessions[reminder.session_id or ""]
            # A late end may move a session's end after steps already delivered or missed;
            # what still waits is always after the end, and nothing before the start.
            start = session.started_at or session.ended_at
            assert start is not None
            assert reminder.planned_at >= start, f"{reminder.id} due before its session"
            if reminder.status in WAITING:
                assert session.ended_at is not None
                assert reminder.planned_at >= session.ended_at, f"{reminder.id} before the end"
        for steps in by_session.values():
            if "window_open" in steps and "overdue" in steps:
                assert steps["overdue"] > steps["window_open"], "overdue before window_open"

        current = newest_treated(list(sessions.values()))
        keep = None if current is None else current.id
        shown = [r for r in reminders if r.status in DELIVERED and r.is_open(now)]
        assert [] == [r.id for r in waiting + shown if r.session_id != keep], (
            f"{profile}: plan steps of a session other than the newest treated one ({keep})"
        )
        if current is None:
            continue
        protocol = PROTOCOLS.get(current.setting, PROTOCOLS["home"])
        ctx = profile_context(CONFIG, profile)
        stored = {r.id: r for r in reminders}
        for step in planning.plan_session(current, protocol, ctx, now):
            if step.due_at <= life.seen_until:
                continue  # its time has come (perhaps before a clock jump back): delivered
            reminder = stored.get(step.id)
            assert reminder is not None, f"{profile}: {step.kind} of {keep} missing from the plan"
            if reminder.rounds:
                continue  # shown before a late end moved the session: what was seen stays
            assert (ReminderStatus.PENDING, step.due_at) == (reminder.status, reminder.planned_at)


@contextmanager
def life_on_a_fake_clock() -> Iterator[Life]:
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore.open(Path(folder) / "plan.db", now=START)
        try:
            yield Life(Sim(store, JumpClock(START), CONFIG))
        finally:
            store.close()


class TestPlanInvariants:
    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(ACTIONS, min_size=3, max_size=40))
    def test_every_sequence_keeps_the_plan_right(self, actions: list[tuple[Any, ...]]) -> None:
        with life_on_a_fake_clock() as life:
            for action in actions:
                life.act(action)
                check(life)
            life.restart_changes_nothing()
            life.act(("wait", 60 * 24 * 50))
            check(life)


class TestExamples:
    """The cases the properties generalise, spelled out."""

    def test_false_start_keeps_the_earlier_plan(self) -> None:
        with life_on_a_fake_clock() as life:
            life.act(("start", "pen1", 0, 20))
            life.act(("end", "pen1", 0, 900))
            plan = {r.id for r in life.sim.store.reminders.waiting_for_profile("alice")}
            life.act(("wait", 60 * 24 * 3))
            life.act(("start", "pen1", 1, 0))
            life.act(("abort", "pen1", 1, 0))
            after = {r.id for r in life.sim.store.reminders.waiting_for_profile("alice")}
            assert {"window_open", "overdue"} <= {
                r.kind for r in life.sim.store.reminders.waiting_for_profile("alice")
            }
            assert after, "the false start cancelled the plan"
            assert plan >= after
            assert "no_needling" == life.sim.store.sessions("alice")[-1].status
            check(life)

    def test_back_dated_newest_session_records_passed_steps_as_missed(self) -> None:
        with life_on_a_fake_clock() as life:
            life.act(("log", "alice", 60 * 24 * 5, None))  # five days ago
            reminders = {r.kind: r for r in life.sim.store.reminders.listing("alice", None)}
            assert ReminderStatus.MISSED == reminders["soothe"].status
            assert ReminderStatus.PENDING == reminders["window_open"].status
            [session] = life.sim.store.sessions("alice")
            assert session.ended_at is not None
            # Day 28 and day 42 at a local time of day: about 28 and 42 days after it.
            opens = reminders["window_open"].planned_at - session.ended_at
            late = reminders["overdue"].planned_at - session.ended_at
            assert timedelta(days=27) < opens < timedelta(days=29)
            assert timedelta(days=41) < late < timedelta(days=43)
            assert [] == [item for item, _ in life.sim.delivered if item.profile == "alice"]
            check(life)

    def test_back_dated_older_session_changes_nothing(self) -> None:
        with life_on_a_fake_clock() as life:
            life.act(("start", "pen1", 0, 20))
            life.act(("end", "pen1", 0, 900))
            before = life.snapshot()[0]
            life.act(("log", "alice", 60 * 24 * 10, None))
            after = [row for row in life.snapshot()[0] if row[0] in {r[0] for r in before}]
            assert before == after
            waiting = life.sim.store.reminders.waiting_for_profile("alice")
            assert 1 == [r.kind for r in waiting].count("window_open")
            check(life)

    def test_void_restores_the_previous_plan(self) -> None:
        with life_on_a_fake_clock() as life:
            life.act(("start", "pen1", 0, 20))
            life.act(("end", "pen1", 0, 900))
            first = {r.id: r.due_at for r in life.sim.store.reminders.waiting_for_profile("alice")}
            life.act(("wait", 60 * 24 * 2))
            life.act(("log", "alice", 0, None))
            mistaken = life.sim.store.sessions("alice")[-1]
            life.send(
                "needlecare/profile/alice/command",
                {"action": "void_session", "session_id": mistaken.id},
            )
            assert "voided" == life.sim.store.session(mistaken.id).status  # type: ignore[union-attr]
            restored = {
                r.id: r.due_at for r in life.sim.store.reminders.waiting_for_profile("alice")
            }
            still_ahead = {rid: due for rid, due in first.items() if due > life.now}
            assert still_ahead == restored
            assert all(
                r.status is ReminderStatus.CANCELLED
                for r in life.sim.store.reminders.listing("alice", None)
                if r.session_id == mistaken.id
            )
            check(life)
