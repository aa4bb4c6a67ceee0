"""Planning: the aftercare plan of a session, across zones and DST, and the guards."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from needlecare.domain.localtime import QuietWindow, local_datetime
from needlecare.domain.planning import (
    PlannedReminder,
    ProfileContext,
    cleanse_first,
    depth_limit,
    fill,
    missed_summary,
    plan_session,
    recovery_day,
    redness_advice,
    reminder_id,
    restricted_product,
    too_soon,
    window_for,
)
from needlecare.domain.protocol import (
    CareProtocol,
    Channel,
    ProtocolConfig,
    Severity,
    build_protocols,
    default_protocol,
)
from needlecare.domain.sessions import Session, SessionStatus

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = QuietWindow(time(22), time(7))
ALICE = ProfileContext("alice", BERLIN, NIGHT)
BOB = ProfileContext("bob", NEW_YORK, NIGHT)
PROTOCOL = default_protocol()
END = datetime(2026, 3, 5, 19, 15, tzinfo=UTC)  # Thu 5 Mar, 20:15 in Berlin


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def session(
    end: datetime | None = END,
    *,
    sid: str = "ses_1",
    status: SessionStatus = SessionStatus.COMPLETED,
    start: datetime | None = None,
    duration_s: int | None = None,
    depth: float | None = None,
) -> Session:
    started = start if start is not None else (end - timedelta(minutes=20) if end else None)
    return Session(
        id=sid,
        profile="alice",
        device_id="pen1",
        setting="home",
        status=status,
        started_at=started,
        ended_at=end,
        last_seen_at=end or started or END,
        needle_depth_mm=depth,
        duration_s=duration_s,
    )


def due_table(plan: list[PlannedReminder]) -> list[tuple[str, datetime]]:
    return [(reminder.kind, reminder.due_at) for reminder in plan]


def with_override(data: dict[str, object]) -> CareProtocol:
    return build_protocols(ProtocolConfig.model_validate(data))["home"]


class TestPlanSession:
    def test_full_default_plan_in_berlin(self) -> None:
        """Every default step, in due order, for a session ending Thu 5 Mar 20:15 CET."""
        assert [
            ("soothe", utc(2026, 3, 5, 19, 15)),
            ("actives_pause", utc(2026, 3, 5, 19, 15)),
            ("serum_window", utc(2026, 3, 5, 19, 45)),
            ("actives_resume", utc(2026, 3, 8, 19, 15)),
            ("window_open", utc(2026, 4, 2, 17)),  # 19:00 CEST: DST began on 29 Mar
            ("overdue", utc(2026, 4, 16, 17)),
        ] == due_table(plan_session(session(), PROTOCOL, ALICE, END))

    def test_full_default_plan_in_new_york(self) -> None:
        """Days count from the local date: 23:30 EST on 5 Mar is already 6 Mar in UTC."""
        end = utc(2026, 3, 6, 4, 30)
        assert [
            ("soothe", utc(2026, 3, 6, 4, 30)),
            ("actives_pause", utc(2026, 3, 6, 4, 30)),
            ("serum_window", utc(2026, 3, 6, 5)),
            ("actives_resume", utc(2026, 3, 9, 4, 30)),
            ("window_open", utc(2026, 4, 2, 23)),  # 2 Apr 19:00 EDT
            ("overdue", utc(2026, 4, 16, 23)),
        ] == due_table(plan_session(session(end), PROTOCOL, BOB, end))

    def test_reminder_fields(self) -> None:
        """A reminder carries the step's delivery settings, filled texts and its session."""
        soothe = plan_session(session(), PROTOCOL, ALICE, END)[0]
        assert (
            PlannedReminder(
                id=reminder_id("ses_1", "soothe"),
                session_id="ses_1",
                profile="alice",
                kind="soothe",
                title="Soothe your skin",
                message=PROTOCOL.step("soothe").message,
                severity=Severity.WARNING,
                channels=(Channel.MIRROR, Channel.DASHBOARD),
                needs_ack=True,
                due_at=END,
                expires_at=None,
                escalation=PROTOCOL.step("soothe").escalation,
            )
            == soothe
        )

    def test_messages_use_local_times(self) -> None:
        """Placeholders become local, human-readable times."""
        plan = {r.kind: r for r in plan_session(session(), PROTOCOL, ALICE, END)}
        assert "No retinoids or exfoliants until Sun 8 Mar, 20:15." == plan["actives_pause"].message
        assert plan["window_open"].message.startswith(
            "Your next session is due between Thu 2 Apr, 21:15 and Thu 16 Apr, 21:15."
        )

    def test_expiry(self) -> None:
        """expires_after becomes an absolute expires_at."""
        serum = plan_session(session(), PROTOCOL, ALICE, END)[2]
        assert ("serum_window", utc(2026, 3, 5, 21, 45)) == (serum.kind, serum.expires_at)

    def test_planning_twice_gives_the_same_plan(self) -> None:
        """Replanning is idempotent: same ids, same reminders."""
        assert plan_session(session(), PROTOCOL, ALICE, END) == plan_session(
            session(), PROTOCOL, ALICE, END
        )

    def test_ids_are_per_session_and_kind(self) -> None:
        """Ids derive from the session id and the step."""
        plan = plan_session(session(), PROTOCOL, ALICE, END)
        assert [reminder_id("ses_1", r.kind) for r in plan] == [r.id for r in plan]

    def test_late_logged_session_drops_past_steps(self) -> None:
        """Steps already more than plan_grace in the past are not planned."""
        plan = plan_session(session(), PROTOCOL, ALICE, END + timedelta(days=2))
        assert ["actives_resume", "window_open", "overdue"] == [r.kind for r in plan]

    def test_grace_keeps_recent_steps(self) -> None:
        """Just past the grace, the end-of-session steps go; +30 min serum stays."""
        kinds = [
            r.kind for r in plan_session(session(), PROTOCOL, ALICE, END + timedelta(minutes=61))
        ]
        assert ["serum_window", "actives_resume", "window_open", "overdue"] == kinds

    def test_disabled_step_is_not_planned(self) -> None:
        """enabled: false removes a step from the plan."""
        protocol = with_override({"steps": {"serum_window": {"enabled": False}}})
        assert "serum_window" not in [r.kind for r in plan_session(session(), protocol, ALICE, END)]

    def test_actives_resume_follows_the_pause(self) -> None:
        """actives_resume is due at the end of the configured pause."""
        protocol = with_override({"actives_pause": "PT96H"})
        plan = {r.kind: r.due_at for r in plan_session(session(), protocol, ALICE, END)}
        assert END + timedelta(hours=96) == plan["actives_resume"]

    @pytest.mark.parametrize(
        ("status", "duration_s", "planned"),
        [
            (SessionStatus.ABORTED, 0, False),
            (SessionStatus.ABORTED, None, True),
            (SessionStatus.ABORTED, 30, True),
            (SessionStatus.END_INFERRED, None, True),
        ],
    )
    def test_which_sessions_get_aftercare(
        self, status: SessionStatus, duration_s: int | None, planned: bool
    ) -> None:
        """An aborted session that needled nothing gets no plan; any other closed one does."""
        plan = plan_session(session(status=status, duration_s=duration_s), PROTOCOL, ALICE, END)
        assert planned == bool(plan)

    def test_open_session_has_no_plan(self) -> None:
        """Nothing is planned before the session ends."""
        open_session = session(None, status=SessionStatus.OPEN, start=END)
        assert [] == plan_session(open_session, PROTOCOL, ALICE, END)

    def test_user_message_with_unknown_placeholders(self) -> None:
        """Unknown placeholders and stray braces in a user's text stay as written."""
        protocol = with_override({"steps": {"soothe": {"message": "Hi {profile}, {nope} {"}}})
        assert "Hi alice, {nope} {" == plan_session(session(), protocol, ALICE, END)[0].message


class TestPlanAcrossDst:
    @pytest.mark.parametrize(
        ("zone", "end", "expected"),
        [
            (  # Sat 28 Mar 21:00 CET; clocks go forward that night
                "Europe/Berlin",
                utc(2026, 3, 28, 20),
                {
                    "serum_window": utc(2026, 3, 28, 20, 30),
                    "actives_resume": utc(2026, 3, 31, 20),  # 22:00 CEST: exactly 72 h
                    "window_open": utc(2026, 4, 25, 17),
                    "overdue": utc(2026, 5, 9, 17),
                },
            ),
            (  # Sat 24 Oct 21:00 CEST; clocks go back that night
                "Europe/Berlin",
                utc(2026, 10, 24, 19),
                {
                    "serum_window": utc(2026, 10, 24, 19, 30),
                    "actives_resume": utc(2026, 10, 27, 19),  # 20:00 CET
                    "window_open": utc(2026, 11, 21, 18),
                    "overdue": utc(2026, 12, 5, 18),
                },
            ),
            (  # Sat 7 Mar 21:00 EST
                "America/New_York",
                utc(2026, 3, 8, 2),
                {
                    "serum_window": utc(2026, 3, 8, 2, 30),
                    "actives_resume": utc(2026, 3, 11, 2),  # 22:00 EDT
                    "window_open": utc(2026, 4, 4, 23),
                    "overdue": utc(2026, 4, 18, 23),
                },
            ),
            (  # Sat 31 Oct 21:00 EDT
                "America/New_York",
                utc(2026, 11, 1, 1),
                {
                    "serum_window": utc(2026, 11, 1, 1, 30),
                    "actives_resume": utc(2026, 11, 4, 1),  # 20:00 EST
                    "window_open": utc(2026, 11, 29, 0),  # 28 Nov 19:00 EST
                    "overdue": utc(2026, 12, 13, 0),
                },
            ),
        ],
    )
    def test_session_the_day_before_a_change(
        self, zone: str, end: datetime, expected: dict[str, datetime]
    ) -> None:
        """Offset steps stay exact hours after the end; day steps stay at 19:00 local."""
        profile = ProfileContext("alice", ZoneInfo(zone), NIGHT)
        plan = {r.kind: r.due_at for r in plan_session(session(end), PROTOCOL, profile, end)}
        assert {"soothe": end, "actives_pause": end, **expected} == plan

    def test_day_step_across_a_change_keeps_local_time(self) -> None:
        """+28 days across spring-forward: 19:00 local, so an hour earlier in UTC."""
        end = utc(2026, 3, 10, 18)  # 19:00 CET
        plan = {r.kind: r.due_at for r in plan_session(session(end), PROTOCOL, ALICE, end)}
        assert (utc(2026, 4, 7, 17), utc(2026, 4, 21, 17)) == (plan["window_open"], plan["overdue"])
        assert time(19) == plan["window_open"].astimezone(BERLIN).time()

    def test_window_is_exact_durations(self) -> None:
        """The window itself is a duration from the end, independent of the prompt's day."""
        end = utc(2026, 3, 10, 18)
        assert (utc(2026, 4, 7, 18), utc(2026, 4, 21, 18)) == window_for(session(end), PROTOCOL)


ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "UTC",
]


class TestPlanProperties:
    @settings(max_examples=300, deadline=None)
    @given(
        end=st.datetimes(
            # Hypothesis takes naive bounds and attaches the zone itself.
            min_value=datetime.combine(date(2020, 1, 1), time()),
            max_value=datetime.combine(date(2035, 12, 31), time()),
            timezones=st.just(UTC),
        ),
        zone_name=st.sampled_from(ZONES),
        day=st.integers(min_value=0, max_value=60),
        at=st.times(),
    )
    @example(end=utc(2026, 3, 1, 12), zone_name="Europe/Berlin", day=28, at=time(2, 30))
    @example(end=utc(2026, 9, 1, 12), zone_name="America/Santiago", day=5, at=time(0, 15))
    def test_local_steps_land_on_their_wall_time(
        self, end: datetime, zone_name: str, day: int, at: time
    ) -> None:
        """Day steps land on their local wall time (or just after a gap); ids are unique."""
        zone = ZoneInfo(zone_name)
        protocol = with_override({"steps": {"window_open": {"day": day, "at": at.isoformat()}}})
        profile = ProfileContext("alice", zone, NIGHT)
        plan = plan_session(session(end), protocol, profile, end)
        assert len(plan) == len({r.id for r in plan})
        local_end = end.astimezone(zone).date()
        for reminder in plan:
            step = protocol.step(reminder.kind)
            if step.day is not None and step.at is not None:
                target = datetime.combine(local_end + timedelta(days=step.day), step.at)
                assert_wall_time(reminder.due_at, target, zone)


def assert_wall_time(due: datetime, target: datetime, zone: ZoneInfo) -> None:
    """``due`` shows ``target`` on the wall clock, or ``target`` fell in a gap ending at ``due``."""
    wall = due.astimezone(zone).replace(tzinfo=None)
    if wall == target:
        return
    just_before = (due - timedelta(microseconds=1)).astimezone(zone)
    assert just_before.utcoffset() != due.astimezone(zone).utcoffset()
    assert just_before.replace(tzinfo=None) < target < wall


class TestHelpers:
    def test_reminder_id_is_stable_and_separated(self) -> None:
        """Same parts, same id; parts do not run into each other."""
        assert reminder_id("ses_1", "soothe") == reminder_id("ses_1", "soothe")
        assert reminder_id("ab", "c") != reminder_id("a", "bc")
        assert (4 + 16, "rem_") == (len(reminder_id("x")), reminder_id("x")[:4])

    def test_fill(self) -> None:
        """Known names are replaced; format specs and unknown names are left alone."""
        assert "Hi alice {x} {profile:>3} {{" == fill(
            "Hi {profile} {x} {profile:>3} {{", {"profile": "alice"}
        )

    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (utc(2026, 3, 5, 22, 59), 0),  # 23:59 local, same day
            (utc(2026, 3, 5, 23, 1), 1),  # 00:01 local next day
            (utc(2026, 3, 8, 12), 3),
            (utc(2026, 3, 1), 0),  # before the session: never negative
        ],
    )
    def test_recovery_day_counts_local_dates(self, now: datetime, expected: int) -> None:
        """Recovery day 0 is the local day of the session."""
        assert expected == recovery_day(END, now, BERLIN)


NOW = END + timedelta(days=10)


class TestTooSoon:
    def test_start_before_the_window(self) -> None:
        """A start 10 days after the last session warns, naming when the window opens."""
        started = session(None, sid="ses_2", status=SessionStatus.OPEN, start=NOW)
        warning = too_soon(started, session(), PROTOCOL, ALICE, NOW)
        assert warning is not None
        assert (reminder_id("ses_2", "too_soon"), "ses_2", NOW) == (
            warning.id,
            warning.session_id,
            warning.due_at,
        )
        assert warning.message.endswith("opens Thu 2 Apr, 21:15.")

    @pytest.mark.parametrize(
        ("previous", "start"),
        [
            (None, NOW),
            (session(), END + timedelta(days=28)),
            (session(status=SessionStatus.ABORTED, duration_s=0), NOW),
        ],
    )
    def test_no_warning(self, previous: Session | None, start: datetime) -> None:
        """No history, a start inside the window, or a previous session that needled nothing."""
        started = session(None, sid="ses_2", status=SessionStatus.OPEN, start=start)
        assert None is too_soon(started, previous, PROTOCOL, ALICE, start)


class TestDepthLimit:
    def test_too_deep(self) -> None:
        """A depth above the device limit warns with both numbers."""
        started = session(None, status=SessionStatus.OPEN, start=NOW, depth=1.5)
        warning = depth_limit(started, 1.0, ALICE, PROTOCOL, NOW)
        assert warning is not None
        assert "1.5 mm is deeper than this device allows (1 mm)." in warning.message

    @pytest.mark.parametrize(("depth", "limit"), [(1.0, 1.0), (0.5, 1.0), (None, 1.0), (2.0, None)])
    def test_within_limit(self, depth: float | None, limit: float | None) -> None:
        """At or below the limit, or either value unknown: no warning."""
        started = session(None, status=SessionStatus.OPEN, start=NOW, depth=depth)
        assert None is depth_limit(started, limit, ALICE, PROTOCOL, NOW)


class TestRestrictedProduct:
    def _check(
        self, ingredients: tuple[str, ...], at: datetime, product: str = "Night cream"
    ) -> PlannedReminder | None:
        return restricted_product(
            "evt_1",
            product,
            ingredients,
            last_session=session(),
            protocol=PROTOCOL,
            profile=ALICE,
            now=at,
        )

    def test_retinol_inside_the_pause(self) -> None:
        """A retinoid during the pause warns, naming the class and the end of the pause."""
        warning = self._check(("Aqua", "Retinol 0.3%"), END + timedelta(hours=5))
        assert warning is not None
        assert (reminder_id("evt_1", "restricted_product"), "Avoid Night cream for now") == (
            warning.id,
            warning.title,
        )
        assert (
            "Night cream contains retinoids; avoid them until Sun 8 Mar, 20:15." == warning.message
        )

    def test_product_name_counts(self) -> None:
        """A product named for its active warns even without an ingredient list."""
        assert None is not self._check((), END + timedelta(hours=1), product="Glycolic Peel Pads")

    @pytest.mark.parametrize(
        ("ingredients", "after"),
        [
            (("Retinol",), timedelta(hours=72)),
            (("Retinol",), -timedelta(hours=1)),
            (("Hyaluronic Acid", "Peptides"), timedelta(hours=1)),
        ],
    )
    def test_no_warning(self, ingredients: tuple[str, ...], after: timedelta) -> None:
        """After the pause, before the session, or nothing restricted: no warning."""
        assert None is self._check(ingredients, END + after)

    def test_application_time_decides(self) -> None:
        """A late-arriving event is judged by when the product was applied."""
        warning = restricted_product(
            "evt_1",
            "Retinol serum",
            (),
            last_session=session(),
            protocol=PROTOCOL,
            profile=ALICE,
            now=END + timedelta(hours=80),
            at=END + timedelta(hours=70),
        )
        assert warning is not None
        assert END + timedelta(hours=80) == warning.due_at

    def test_without_history(self) -> None:
        """No treated session, no pause."""
        assert None is restricted_product(
            "evt_1", "Retinol", (), last_session=None, protocol=PROTOCOL, profile=ALICE, now=END
        )


class TestRednessAdvice:
    def _check(self, redness: int, at: datetime) -> PlannedReminder | None:
        return redness_advice(
            "evt_9",
            redness,
            at=at,
            last_session=session(),
            protocol=PROTOCOL,
            profile=ALICE,
            now=at,
        )

    def test_high_redness_on_day_three(self) -> None:
        """Redness at the threshold on recovery day 3 gives advice."""
        advice = self._check(60, utc(2026, 3, 8, 8))
        assert advice is not None
        assert (reminder_id("evt_9", "redness_advice"), "ses_1") == (advice.id, advice.session_id)
        assert advice.message.startswith("Redness is still 60/100 on day 3.")

    @pytest.mark.parametrize(
        ("redness", "at"),
        [
            (90, utc(2026, 3, 7, 22, 59)),  # 23:59 local on day 2: expected redness
            (59, utc(2026, 3, 9, 8)),  # below the threshold
            (90, END + timedelta(days=28)),  # the next window is open
        ],
    )
    def test_no_advice(self, redness: int, at: datetime) -> None:
        """Early, mild, or once the next window opened: no advice."""
        assert None is self._check(redness, at)


class TestCleanseFirst:
    def _check(self, last: datetime | None, *, ever: bool = True) -> PlannedReminder | None:
        started = session(None, status=SessionStatus.OPEN, start=NOW)
        return cleanse_first(
            started,
            last_cleansed_at=last,
            ever_cleansed=ever,
            protocol=PROTOCOL,
            profile=ALICE,
            now=NOW,
        )

    @pytest.mark.parametrize("last", [None, NOW - timedelta(hours=2), NOW + timedelta(minutes=5)])
    def test_no_recent_cleanse(self, last: datetime | None) -> None:
        """A start with no cleanse in the hour before it gets the reminder, on the mirror."""
        reminder = self._check(last)
        assert reminder is not None
        assert ((Channel.MIRROR,), reminder_id("ses_1", "cleanse_first")) == (
            reminder.channels,
            reminder.id,
        )

    def test_recent_cleanse(self) -> None:
        """A cleanse 20 minutes before the start is enough."""
        assert None is self._check(NOW - timedelta(minutes=20))

    def test_mirror_without_cleanse_support(self) -> None:
        """A profile that never sent a cleanse event is not nagged."""
        assert None is self._check(None, ever=False)


@dataclass(frozen=True)
class Missed:
    kind: str
    title: str
    due_at: datetime


class TestMissedSummary:
    def test_lists_missed_reminders_in_due_order(self) -> None:
        """One prompt lists every missed reminder with its local due time."""
        missed = [
            Missed("serum_window", "Serum time", utc(2026, 3, 5, 19, 45)),
            Missed("soothe", "Soothe your skin", utc(2026, 3, 5, 19, 15)),
        ]
        summary = missed_summary(missed, ALICE, PROTOCOL, NOW, "startup-1")
        assert summary is not None
        assert (reminder_id("startup-1", "missed_summary"), None) == (
            summary.id,
            summary.session_id,
        )
        assert (
            "Soothe your skin (Thu 5 Mar, 20:15); Serum time (Thu 5 Mar, 20:45)" == summary.message
        )

    def test_nothing_missed(self) -> None:
        """No missed reminders, no summary."""
        assert None is missed_summary([], ALICE, PROTOCOL, NOW, "startup-1")


class TestDisabledGuard:
    def test_disabled_guard_is_silent(self) -> None:
        """A guard switched off by config never fires."""
        protocol = with_override({"steps": {"depth_limit": {"enabled": False}}})
        started = session(None, status=SessionStatus.OPEN, start=NOW, depth=2.5)
        assert None is depth_limit(started, 1.0, ALICE, protocol, NOW)


def test_local_datetime_helper_matches_plan() -> None:
    """The plan's day steps agree with local_datetime for the profile zone."""
    plan = {r.kind: r.due_at for r in plan_session(session(), PROTOCOL, ALICE, END)}
    assert local_datetime(date(2026, 4, 2), time(19), BERLIN) == plan["window_open"]
