"""Years of random life on a fake clock: sessions, products, acks, snoozes and restarts.

The daemon's aftercare and ingest run against a real SQLite file; only the MQTT
transport is replaced by a driver that "sends" every outbox item whose time has
come. Properties checked after every step and at the end:

- at most once: no outbox item is delivered twice, and each reminder is delivered
  once per round (a round is its first delivery and each delivery after a snooze);
- none lost: nothing stays waiting past its due time once the daemon has woken;
- quiet hours: no deferred channel is delivered inside the profile's quiet hours;
- never early: no delivery happens before its reminder was due.
"""

import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from needlecare.app.inbound import InboundMessage
from needlecare.config import NeedlecareConfig
from needlecare.domain.localtime import QuietWindow, in_quiet_hours
from needlecare.domain.reminders import ReminderStatus
from needlecare_integrations.store import SqliteStore
from support.clock import FakeClock
from support.core_sim import Sim

pytestmark = pytest.mark.integration

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
PEN1 = "needlecare/device/pen1/event"
CONFIG = NeedlecareConfig.model_validate(
    {
        "homeassistant": {"url": "http://127.0.0.1:1"},  # so HA channels get outbox rows
        "profiles": {
            "alice": {
                "timezone": "Europe/Berlin",
                "quiet_hours": {"start": "22:00", "end": "07:00"},
            },
            "bob": {
                "timezone": "America/New_York",
                "quiet_hours": {"start": "21:30", "end": "06:15", "defer": ["voice", "mobile"]},
            },
        },
        "devices": {"pen1": {"owner": "alice"}, "pen2": {"owner": "bob"}},
        "mirrors": {"hallway": {}},
    }
)


ACTIONS = st.one_of(
    st.tuples(st.just("session"), st.sampled_from(["pen1", "pen2"]), st.integers(1, 90)),
    st.tuples(st.just("wait"), st.just(""), st.integers(1, 60 * 24 * 20)),  # minutes
    st.tuples(st.just("down"), st.just(""), st.integers(1, 60 * 24 * 3)),
    st.tuples(st.just("product"), st.sampled_from(["alice", "bob"]), st.integers(0, 2)),
    st.tuples(st.just("ack"), st.sampled_from(["alice", "bob"]), st.integers(0, 5)),
    st.tuples(st.just("snooze"), st.sampled_from(["alice", "bob"]), st.integers(1, 600)),
    st.tuples(st.just("ack_all"), st.sampled_from(["alice", "bob"]), st.just(0)),
)
PRODUCTS = (["retinol"], ["hyaluronic acid"], ["Glycolic Acid 7%", "aloe"])


def act(sim: Sim, action: tuple[str, str, int]) -> None:
    kind, who, n = action
    now = sim.clock.now()
    if kind == "session":
        sim.send(f"needlecare/device/{who}/event", {"type": "session_started"})
        sim.run_until(now + timedelta(minutes=n))
        sim.send(f"needlecare/device/{who}/event", {"type": "session_ended", "duration_s": n * 60})
    elif kind == "wait":
        sim.run_until(now + timedelta(minutes=n))
    elif kind == "down":
        sim.down_until(now + timedelta(minutes=n))
    elif kind == "product":
        body = {
            "type": "product_applied",
            "profile": who,
            "product": "p",
            "ingredients": PRODUCTS[n],
        }
        sim.send("needlecare/mirror/hallway/event", body)
    elif kind in ("ack", "snooze"):
        open_ids = sim.open_reminder_ids(who)
        if open_ids:
            body: dict[str, Any] = {"action": kind, "reminder_id": open_ids[n % len(open_ids)]}
            if kind == "snooze":
                body["minutes"] = n
            sim.send(f"needlecare/profile/{who}/command", body)
    else:
        sim.send(f"needlecare/profile/{who}/command", {"action": "ack_all"})


def check(sim: Sim) -> None:
    now = sim.clock.now()
    keys = Counter(item.key for item, _ in sim.delivered)
    assert [] == [key for key, count in keys.items() if count > 1], "an item was delivered twice"
    assert [] == [r.id for r in sim.store.reminders.due(now - timedelta(seconds=1))], "lost"
    reminders = {r.id: r for r in sim.store.reminders.listing(None, None)}
    mirror_rounds: Counter[str] = Counter()
    for item, at in sim.delivered:
        reminder = reminders[item.reminder_id or ""]
        profile = CONFIG.profiles[reminder.profile]
        window = QuietWindow(profile.quiet_hours.start, profile.quiet_hours.end)
        if item.channel in profile.quiet_hours.defer:
            assert not in_quiet_hours(at, window, profile.zone), f"{item.key} in quiet hours"
        assert at >= reminder.planned_at or reminder.kind in {"missed_summary"}, "early"
        if item.channel == "mirror" and ":presence:" not in item.key:
            mirror_rounds[item.key.rsplit(":", 2)[0]] += 1
    assert [] == [key for key, count in mirror_rounds.items() if count > 1]
    for reminder in reminders.values():
        if reminder.status in (ReminderStatus.SENT, ReminderStatus.LATE):
            assert reminder.rounds >= 1


class TestYearsOfLife:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(ACTIONS, min_size=5, max_size=60))
    def test_every_reminder_at_most_once_none_lost_none_in_quiet_hours(
        self, actions: list[tuple[str, str, int]]
    ) -> None:
        """Random sessions, products, answers and restarts keep the delivery promises."""
        with tempfile.TemporaryDirectory() as folder:
            clock = FakeClock(START)
            store = SqliteStore.open(Path(folder) / "sim.db", now=START)
            try:
                sim = Sim(store, clock, CONFIG)
                for action in actions:
                    act(sim, action)
                    check(sim)
                sim.run_until(sim.clock.now() + timedelta(days=60))
                check(sim)
            finally:
                store.close()

    def test_two_years_of_monthly_sessions(self) -> None:
        """A steady routine over two years plans, delivers and closes every reminder."""
        with tempfile.TemporaryDirectory() as folder:
            clock = FakeClock(START)
            store = SqliteStore.open(Path(folder) / "sim.db", now=START)
            try:
                sim = Sim(store, clock, CONFIG)
                for month in range(24):
                    act(sim, ("session", "pen1", 20))
                    act(sim, ("ack_all", "alice", 0))
                    if month % 5 == 0:
                        act(sim, ("down", "", 60 * 30))
                    act(sim, ("wait", "", 60 * 24 * 30))
                    check(sim)
                kinds = Counter(r.kind for r in store.reminders.listing("alice", None))
                assert 24 == kinds["soothe"]
                assert [] == store.reminders.waiting_for_profile("bob")
            finally:
                store.close()

    def test_a_step_due_at_the_sessions_end_goes_out_with_its_recording(self) -> None:
        """The soothe is delivered in the transaction that records the end: one write, as
        sent, and its mirror item queued, without waiting for a wake-up."""
        with tempfile.TemporaryDirectory() as folder:
            clock = FakeClock(START)
            store = SqliteStore.open(Path(folder) / "sim.db", now=START)
            try:
                sim = Sim(store, clock, CONFIG)
                sim.send("needlecare/device/pen1/event", {"type": "session_started"})
                clock.set(START + timedelta(minutes=20))
                writes: list[str] = []
                store._conn.set_trace_callback(
                    lambda sql: writes.append(sql) if "INTO reminders" in sql else None
                )
                end = b'{"event_id": "end1", "type": "session_ended", "duration_s": 1200}'
                sim.ingest.handle([InboundMessage(PEN1, end, clock.now())], clock.now())
                store._conn.set_trace_callback(None)
                [soothe] = [r for r in store.reminders.listing("alice", None) if r.kind == "soothe"]
                assert (ReminderStatus.SENT, 1) == (soothe.status, soothe.rounds)
                assert 1 == sum(soothe.id in sql for sql in writes)
                mirror = [i for i in store.outbox.listing("pending") if i.channel == "mirror"]
                assert soothe.id in [i.reminder_id for i in mirror]
            finally:
                store.close()
