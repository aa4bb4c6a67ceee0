"""The profile state: status through the care cycle, restrictions and the JSON payload."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from needlecare.domain.localtime import QuietWindow
from needlecare.domain.planning import ProfileContext
from needlecare.domain.profile_state import (
    OpenPrompt,
    ProfileState,
    Restriction,
    next_state_change,
    profile_state,
    rfc3339,
    to_json,
)
from needlecare.domain.protocol import ProtocolConfig, Severity, build_protocols, default_protocol
from needlecare.domain.sessions import Session, SessionStatus

BERLIN = ZoneInfo("Europe/Berlin")
ALICE = ProfileContext("alice", BERLIN, QuietWindow(time(22), time(7)))
PROTOCOL = default_protocol()
END = datetime(2026, 3, 5, 19, 15, tzinfo=UTC)  # 20:15 in Berlin
RESTRICTED = ("retinoids", "exfoliants")


def session(
    status: SessionStatus = SessionStatus.COMPLETED, duration_s: int | None = None
) -> Session:
    return Session(
        id="ses_1",
        profile="alice",
        device_id="pen1",
        setting="home",
        status=status,
        started_at=END - timedelta(minutes=20),
        ended_at=None if status is SessionStatus.OPEN else END,
        last_seen_at=END,
        duration_s=duration_s,
    )


def state_at(now: datetime, last: Session | None = None) -> ProfileState:
    return profile_state(ALICE, last if last is not None else session(), PROTOCOL, (), now)


class TestProfileState:
    def test_no_history(self) -> None:
        """Without a treated session there is no window and nothing restricted."""
        assert ProfileState("alice", "no_history", None, None, (), None, None, ()) == (
            profile_state(ALICE, None, PROTOCOL, (), END)
        )

    @pytest.mark.parametrize(
        "last",
        [
            session(SessionStatus.ABORTED, duration_s=0),
            session(SessionStatus.OPEN),
        ],
    )
    def test_untreated_last_session_is_no_history(self, last: Session) -> None:
        """An aborted session that needled nothing, or one still open, starts no cycle."""
        assert "no_history" == state_at(END, last).status

    def test_recovering(self) -> None:
        """Inside the actives pause: recovering, with the restriction until its end."""
        assert ProfileState(
            profile="alice",
            status="recovering",
            last_session_at=END,
            recovery_day=1,
            restrictions=(Restriction("actives_pause", END + timedelta(hours=72), RESTRICTED),),
            next_window_start=END + timedelta(days=28),
            next_window_end=END + timedelta(days=42),
            open_prompts=(),
        ) == state_at(END + timedelta(hours=20))

    @pytest.mark.parametrize(
        ("after", "status"),
        [
            (timedelta(0), "recovering"),
            (timedelta(hours=72) - timedelta(microseconds=1), "recovering"),
            (timedelta(hours=72), "resting"),
            (timedelta(days=28) - timedelta(microseconds=1), "resting"),
            (timedelta(days=28), "due"),
            (timedelta(days=42) - timedelta(microseconds=1), "due"),
            (timedelta(days=42), "overdue"),
            (timedelta(days=400), "overdue"),
        ],
    )
    def test_status_through_the_cycle(self, after: timedelta, status: str) -> None:
        """recovering → resting → due → overdue at the pause end and the window edges."""
        assert status == state_at(END + after).status

    def test_restriction_lifts_after_the_pause(self) -> None:
        """No restriction once the pause is over."""
        assert () == state_at(END + timedelta(hours=72)).restrictions

    def test_professional_windows(self) -> None:
        """The protocol passed in decides the window."""
        config = ProtocolConfig.model_validate(
            {"professional": {"window_open_after": "P42D", "window_close_after": "P56D"}}
        )
        protocol = build_protocols(config)["professional"]
        state = profile_state(ALICE, session(), protocol, (), END + timedelta(days=30))
        assert ("resting", END + timedelta(days=42), END + timedelta(days=56)) == (
            state.status,
            state.next_window_start,
            state.next_window_end,
        )

    def test_recovery_day_follows_local_midnight(self) -> None:
        """Day 1 starts at local midnight (23:00 UTC in winter), not 24 h after the end."""
        assert (0, 1) == (
            state_at(datetime(2026, 3, 5, 22, 59, tzinfo=UTC)).recovery_day,
            state_at(datetime(2026, 3, 5, 23, 0, tzinfo=UTC)).recovery_day,
        )

    def test_open_prompts_in_due_order(self) -> None:
        """Open prompts are kept, earliest first."""
        late = OpenPrompt("rem_b", "serum_window", "Serum time", Severity.INFO, END + timedelta(1))
        early = OpenPrompt("rem_a", "soothe", "Soothe", Severity.WARNING, END)
        state = profile_state(ALICE, session(), PROTOCOL, (late, early), END)
        assert (early, late) == state.open_prompts


class TestNextStateChange:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (END, datetime(2026, 3, 5, 23, tzinfo=UTC)),  # local midnight first
            (datetime(2026, 3, 8, 12, tzinfo=UTC), END + timedelta(hours=72)),
            (END + timedelta(days=28, hours=-1), END + timedelta(days=28)),
        ],
    )
    def test_earliest_boundary(self, now: datetime, expected: datetime) -> None:
        """The pause end, a window edge or the next local midnight, whichever is first."""
        assert expected == next_state_change(ALICE, session(), PROTOCOL, now)

    def test_no_history_never_changes(self) -> None:
        """Without a session only a new session changes the state."""
        assert None is next_state_change(ALICE, None, PROTOCOL, END)


class TestToJson:
    def test_product_field_names_and_utc_strings(self) -> None:
        """The PRODUCT §2 fields, times as RFC 3339 UTC with Z; each open prompt carries
        what a mirror needs to show and answer it."""
        prompt = OpenPrompt(
            "rem_a", "soothe", "Soothe your skin", Severity.WARNING, END, "Apply a serum."
        )
        state = profile_state(
            ALICE, session(), PROTOCOL, (prompt,), END + timedelta(hours=1), display_name="Alice"
        )
        assert {
            "profile": "alice",
            "display_name": "Alice",
            "language": "en",
            "status": "recovering",
            "last_session_at": "2026-03-05T19:15:00Z",
            "recovery_day": 0,
            "restrictions": [
                {
                    "name": "actives_pause",
                    "until": "2026-03-08T19:15:00Z",
                    "ingredients": ["retinoids", "exfoliants"],
                }
            ],
            "next_window_start": "2026-04-02T19:15:00Z",
            "next_window_end": "2026-04-16T19:15:00Z",
            "open_prompts": [
                {
                    "id": "rem_a",
                    "reminder_id": "rem_a",
                    "kind": "soothe",
                    "title": "Soothe your skin",
                    "message": "Apply a serum.",
                    "severity": "warning",
                    "due_at": "2026-03-05T19:15:00Z",
                    "expires_at": None,
                    "actions": ["ack", "snooze"],
                }
            ],
        } == to_json(state)

    def test_display_name_defaults_to_the_profile(self) -> None:
        """Without a configured display name, people read the profile slug."""
        payload = to_json(profile_state(ALICE, None, PROTOCOL, (), END))
        assert "alice" == payload["display_name"]

    @pytest.mark.parametrize("last", [None, session()])
    def test_carries_the_profile_language(self, last: Session | None) -> None:
        """The profile's language travels with the state, with and without history, so a
        mirror can word each person's buttons in that person's language."""
        german = ProfileContext("alice", BERLIN, QuietWindow(time(22), time(7)), language="de")
        payload = to_json(profile_state(german, last, PROTOCOL, (), END + timedelta(hours=1)))
        assert "de" == payload["language"]

    def test_expiring_prompt_carries_its_expiry(self) -> None:
        """A prompt that vanishes by itself says when, so a mirror can drop it on time."""
        prompt = OpenPrompt(
            "rem_b", "serum_window", "Serum time", Severity.INFO, END, "", END + timedelta(hours=12)
        )
        payload = to_json(profile_state(ALICE, None, PROTOCOL, (prompt,), END))
        assert [("rem_b", "2026-03-06T07:15:00Z")] == [
            (p["reminder_id"], p["expires_at"]) for p in payload["open_prompts"]
        ]

    def test_no_history(self) -> None:
        """Nulls where there is nothing to report."""
        payload = to_json(profile_state(ALICE, None, PROTOCOL, (), END))
        assert (None, None, None, None, []) == (
            payload["last_session_at"],
            payload["recovery_day"],
            payload["next_window_start"],
            payload["next_window_end"],
            payload["restrictions"],
        )

    def test_rfc3339_converts_to_utc(self) -> None:
        """An aware time in any zone comes out in UTC."""
        assert "2026-03-05T19:15:00Z" == rfc3339(END.astimezone(BERLIN))
