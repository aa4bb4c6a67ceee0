"""The wall clock jumps (suspend, NTP) and daylight-saving time changes, on a fake clock.

Built on the years-long simulation (tests/integration/test_reminder_simulation.py):
its ``Sim`` drives the daemon's ingest and aftercare against a real SQLite file and
its ``check`` holds the delivery promises after every step: nothing delivered twice,
one delivery per round per mirror, nothing left waiting past its due time once the
daemon has woken, no deferred channel inside quiet hours, nothing early. Here the
clock may also jump forwards (a suspended laptop) and backwards (an NTP
correction), and sessions fall on both DST changes in Berlin and New York. The
profiles get a phone and a voice, so that quiet hours really defer something.
"""

import contextlib
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration import test_reminder_simulation as simulation
from integration.test_reminder_simulation import ACTIONS, act, check
from needlecare.config import NeedlecareConfig
from needlecare.domain.reminders import ReminderStatus
from needlecare_integrations.store import SqliteStore
from support.clock import JumpClock
from support.core_sim import Sim

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
CONFIG = NeedlecareConfig.model_validate(
    {
        "homeassistant": {"url": "http://127.0.0.1:1"},
        "profiles": {
            "alice": {
                "timezone": "Europe/Berlin",
                "quiet_hours": {"start": "22:00", "end": "07:00"},
                "notify_service": "notify.alice_phone",
                "voice": {"service": "tts.speak"},
            },
            "bob": {
                "timezone": "America/New_York",
                "quiet_hours": {"start": "21:30", "end": "06:15", "defer": ["voice", "mobile"]},
                "notify_service": "notify.bob_phone",
                "voice": {"service": "script.announce"},
            },
        },
        "devices": {"pen1": {"owner": "alice"}, "pen2": {"owner": "bob"}},
        "mirrors": {"hallway": {}},
    }
)
QUIET_END = {"alice": time(7, 0), "bob": time(6, 15)}
ZONE = {"alice": BERLIN, "bob": NEW_YORK}


@contextlib.contextmanager
def simulated(start: datetime) -> Iterator[Sim]:
    """A Sim on a JumpClock with this module's config (patched into the simulation module)."""
    with (
        mock.patch.object(simulation, "CONFIG", CONFIG),
        tempfile.TemporaryDirectory() as folder,
    ):
        store = SqliteStore.open(Path(folder) / "clock.db", now=start)
        try:
            yield Sim(store, JumpClock(start), CONFIG)
        finally:
            store.close()


def jump(sim: Sim, delta: timedelta) -> None:
    """The wall clock jumps while the daemon runs; its armed wake-up then fires."""
    sim.clock.set(sim.clock.now() + delta)
    sim.settle()


def session(sim: Sim, device: str, minutes: int) -> None:
    act(sim, ("session", device, minutes))
    check(sim)


def deliveries(sim: Sim) -> Counter[str]:
    return Counter(item.channel for item, _ in sim.delivered)


class TestClockJumps:
    def test_forward_jump_of_three_days_delivers_late_or_summarises_once(self) -> None:
        """A suspended laptop wakes three days later: due work is done once, nothing lost."""
        with simulated(datetime(2026, 5, 4, 17, 0, tzinfo=UTC)) as sim:
            session(sim, "pen1", 20)
            session(sim, "pen2", 35)
            sim.run_until(sim.clock.now() + timedelta(minutes=10))
            before = len(sim.delivered)
            jump(sim, timedelta(days=3))
            check(sim)
            reminders = sim.store.reminders.listing(None, None)
            statuses = Counter(r.status for r in reminders)
            assert statuses[ReminderStatus.MISSED] >= 1, "steps due during the jump are missed"
            missed_by = {r.profile for r in reminders if r.status is ReminderStatus.MISSED}
            summaries = Counter(r.profile for r in reminders if r.kind == "missed_summary")
            assert dict.fromkeys(missed_by, 1) == dict(summaries), "one summary per profile"
            sim.run_until(sim.clock.now() + timedelta(days=60))
            check(sim)
            assert len(sim.delivered) > before

    def test_backward_jump_of_two_hours_neither_repeats_nor_loses(self) -> None:
        """NTP sets the clock back two hours mid-session: no prompt twice, none lost."""
        with simulated(datetime(2026, 6, 10, 15, 0, tzinfo=UTC)) as sim:
            session(sim, "pen1", 15)
            sim.run_until(sim.clock.now() + timedelta(minutes=45))  # soothe escalates to voice
            check(sim)
            sent_before = len(sim.delivered)
            sim.send("needlecare/device/pen2/event", {"type": "session_started"})
            jump(sim, timedelta(hours=-2))  # the session "ends" before it started
            sim.send("needlecare/device/pen2/event", {"type": "session_ended"})
            check(sim)
            sim.run_until(sim.clock.now() + timedelta(hours=3))  # back past the old "now"
            check(sim)
            jump(sim, timedelta(hours=-2))  # and once more, with work pending
            sim.run_until(sim.clock.now() + timedelta(days=50))
            check(sim)
            assert len(sim.delivered) > sent_before
            sessions = sim.store.sessions("bob")
            assert 1 == len(sessions)
            assert [] == [r.id for r in sim.store.reminders.listing(None, "pending")]

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        st.lists(
            st.one_of(
                ACTIONS,
                st.tuples(st.just("jump"), st.just(""), st.integers(-180, 60 * 24 * 4)),
            ),
            min_size=5,
            max_size=40,
        )
    )
    def test_random_life_with_clock_jumps_keeps_the_delivery_promises(
        self, actions: list[tuple[str, str, int]]
    ) -> None:
        """Random sessions, answers, restarts and jumps both ways keep every promise."""
        with simulated(datetime(2026, 1, 5, 8, 0, tzinfo=UTC)) as sim:
            for action in actions:
                if action[0] == "jump":
                    jump(sim, timedelta(minutes=action[2] or 1))
                else:
                    act(sim, action)
                check(sim)
            sim.run_until(sim.clock.now() + timedelta(days=60))
            check(sim)


# (profile, device, session end in UTC): each just before or across a DST change.
DST_SESSIONS = [
    ("alice", "pen1", datetime(2026, 3, 28, 20, 40, tzinfo=UTC)),  # 21:40 CET, quiet at 22:00
    ("alice", "pen1", datetime(2026, 3, 29, 0, 50, tzinfo=UTC)),  # 01:50 CET, 10 min before
    ("alice", "pen1", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # 02:30 CEST, repeated hour
    ("alice", "pen1", datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),  # 02:30 CET, the second one
    ("bob", "pen2", datetime(2026, 3, 8, 6, 50, tzinfo=UTC)),  # 01:50 EST, 10 min before
    ("bob", "pen2", datetime(2026, 3, 8, 1, 50, tzinfo=UTC)),  # 20:50 EST the evening before
    ("bob", "pen2", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # 01:30 EDT, repeated hour
    ("bob", "pen2", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),  # 01:30 EST, the second one
]

DST_IDS = [f"{profile}-{end:%m%dT%H%M}Z" for profile, _, end in DST_SESSIONS]


class TestDaylightSaving:
    @pytest.mark.parametrize(("profile", "device", "end"), DST_SESSIONS, ids=DST_IDS)
    def test_session_around_a_dst_change(self, profile: str, device: str, end: datetime) -> None:
        """Quiet hours end at their local time, 19:00 stays 19:00, nothing twice or lost."""
        with simulated(end - timedelta(minutes=20)) as sim:
            session(sim, device, 20)
            sim.run_until(end + timedelta(days=50))
            check(sim)
            zone, quiet_end = ZONE[profile], QUIET_END[profile]
            deferred = [
                (item, at)
                for item, at in sim.delivered
                if item.channel in CONFIG.profiles[profile].quiet_hours.defer
                and item.not_before > item.created_at
            ]
            assert deferred, "each of these sessions has something for quiet hours to hold back"
            for item, at in deferred:  # held back by quiet hours: out exactly at their end
                assert quiet_end == at.astimezone(zone).time().replace(microsecond=0), item.key
            reminders = sim.store.reminders.listing(profile, None)
            window = [r.planned_at for r in reminders if r.kind == "window_open"]
            assert [time(19, 0)] == [moment.astimezone(zone).time() for moment in window]
            assert deliveries(sim)["mirror"] >= 6  # soothe, pause, serum, resume, window, overdue
            print(f"DST {profile} {end:%Y-%m-%dT%H:%MZ}: {dict(deliveries(sim))}, {len(deferred)}")
