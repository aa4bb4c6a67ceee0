"""Every prompt of every step, rendered in every language with real dates across a DST change.

Planning is pure, so the whole protocol is rendered here: each plan step of a
session that ends a few days before the spring-forward change (its actives pause
ends after it), and each guard with its real trigger. Non-English output must not
carry English words, and no output may keep an unfilled ``{placeholder}``.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from needlecare.domain import planning
from needlecare.domain.localtime import QuietWindow
from needlecare.domain.planning import PlannedReminder, ProfileContext
from needlecare.domain.protocol import STEP_NAMES, default_protocol
from needlecare.domain.sessions import Session, SessionStatus
from needlecare.i18n import SUPPORTED_LANGUAGES

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietWindow(time(22), time(7))
# Europe springs forward on Sun 29 Mar 2026; the 72 h pause ends after the change,
# and the window opens on the summer side of it.
END = datetime(2026, 3, 27, 19, 15, tzinfo=UTC)
NOW = END
PROTOCOL = default_protocol()
# Words that only English output has: function words and the protocol's own terms.
# (Words shared with a language, like "session" in French or "open" in Dutch, are out.)
ENGLISH = re.compile(
    r"\b(the|your|and|with|until|again|still|skin|cream|soothe|avoid|contains|deeper|"
    r"allows|device|next|window|overdue|missed|reminders?|retinoids|"
    r"millimetres|please|recovering|makeup|Sunday|Monday|Tuesday|Wednesday|Thursday|"
    r"Friday|Saturday|March|April|May|weeks?|days?)\b",
)
ENGLISH_ABBREVIATIONS = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b")  # case matters
PLACEHOLDER = re.compile(r"\{[a-z_]*\}")


@dataclass(frozen=True)
class Missed:
    kind: str
    title: str
    due_at: datetime


def session(sid: str, end: datetime, *, depth: float | None = None) -> Session:
    return Session(
        id=sid,
        profile="alice",
        device_id="pen1",
        setting="home",
        status=SessionStatus.COMPLETED,
        started_at=end - timedelta(minutes=20),
        ended_at=end,
        last_seen_at=end,
        needle_depth_mm=depth,
    )


def every_prompt(language: str) -> dict[str, PlannedReminder]:
    """One prompt of every step of the protocol, in ``language``."""
    profile = ProfileContext("alice", BERLIN, NIGHT, language)
    last = session("s1", END)
    plan = planning.plan_session(last, PROTOCOL, profile, NOW - timedelta(minutes=1))
    prompts = {p.kind: p for p in plan}
    started = session("s2", END + timedelta(days=5), depth=2.5)
    later = END + timedelta(days=1)
    guards = [
        planning.too_soon(started, last, PROTOCOL, profile, started.started_at),
        planning.depth_limit(started, 1.5, profile, PROTOCOL, later),
        planning.restricted_product(
            "e1",
            "Night serum",
            ["retinol", "glycolic acid"],
            last_session=last,
            protocol=PROTOCOL,
            profile=profile,
            now=later,
        ),
        planning.redness_advice(
            "e2",
            80,
            at=END + timedelta(days=4),
            last_session=last,
            protocol=PROTOCOL,
            profile=profile,
            now=END + timedelta(days=4),
        ),
        planning.cleanse_first(
            started,
            last_cleansed_at=None,
            ever_cleansed=True,
            protocol=PROTOCOL,
            profile=profile,
            now=later,
        ),
        planning.missed_summary(
            [Missed("soothe", plan[0].title, END), Missed("serum_window", plan[1].title, END)],
            profile,
            PROTOCOL,
            later,
            "startup-1",
        ),
    ]
    prompts |= {guard.kind: guard for guard in guards if guard is not None}
    return prompts


def texts(prompt: PlannedReminder) -> dict[str, str]:
    return {"title": prompt.title, "message": prompt.message, "speech": prompt.speech}


class TestEveryStepInEveryLanguage:
    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_every_step_renders(self, language: str) -> None:
        """Each of the protocol's steps gives a prompt, with a title, message and speech."""
        prompts = every_prompt(language)
        assert sorted(STEP_NAMES) == sorted(prompts)
        for prompt in prompts.values():
            assert all(texts(prompt).values()), prompt

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_no_placeholder_left_unfilled(self, language: str) -> None:
        """No ``{name}`` survives into any shown or spoken text."""
        for kind, prompt in every_prompt(language).items():
            for field, text in texts(prompt).items():
                assert [] == PLACEHOLDER.findall(text), (kind, field, text)

    @pytest.mark.parametrize("language", [lang for lang in SUPPORTED_LANGUAGES if lang != "en"])
    def test_no_english_left(self, language: str) -> None:
        """Titles, messages and voice texts hold no English word (product names aside)."""
        for kind, prompt in every_prompt(language).items():
            for field, text in texts(prompt).items():
                words = text.replace("Night serum", "")
                found = ENGLISH.findall(words) + ENGLISH_ABBREVIATIONS.findall(words)
                assert [] == found, (kind, field, text)

    @pytest.mark.parametrize("language", [lang for lang in SUPPORTED_LANGUAGES if lang != "en"])
    def test_every_text_differs_from_english(self, language: str) -> None:
        """Each step's title and message is translated, not passed through."""
        english = every_prompt("en")
        for kind, prompt in every_prompt(language).items():
            if kind == "missed_summary":
                continue  # its message lists the (translated) titles of other prompts
            assert english[kind].title != prompt.title, kind
            assert english[kind].message != prompt.message, kind

    def test_english_checks_would_catch_english(self) -> None:
        """The English detector does fire on English output (the tests above can fail)."""
        for kind, prompt in every_prompt("en").items():
            if kind != "missed_summary":
                assert ENGLISH.findall(prompt.message + " " + prompt.speech), kind


class TestDatesAcrossDaylightSaving:
    def test_times_stay_on_the_local_wall_clock_in_every_language(self) -> None:
        """The pause ends 72 h after 20:15 CET: at 21:15 CEST, shown in each locale's way."""
        expected = {
            "en": "No retinoids or exfoliants until Mon 30 Mar, 21:15.",
            "de": "Keine Retinoide oder Peelings bis Mo., 30. März, 21:15.",
            "fr": "Ni rétinoïdes ni exfoliants jusqu'au lun. 30 mars 21:15.",
            "es": "Nada de retinoides ni exfoliantes hasta el lun, 30 mar, 21:15.",
            "nl": "Geen retinoïden of exfolianten tot ma 30 mrt, 21:15.",
        }
        actual = {lang: every_prompt(lang)["actives_pause"].message for lang in expected}
        assert expected == actual

    def test_voice_says_dates_in_full_and_distances_relative(self) -> None:
        """Spoken: weekday and month written out; the window 'opens in 3 weeks'."""
        de = every_prompt("de")
        assert "Montag, 30. März 2026, 21:15" in de["restricted_product"].speech
        assert "öffnet sich in 3 Wochen." in de["too_soon"].speech
        assert "The window for your next session opens in 3 weeks." in (
            every_prompt("en")["too_soon"].speech
        )

    def test_lists_and_numbers_follow_the_locale(self) -> None:
        """Ingredient classes by display name, joined the locale's way; decimal commas."""
        fr = every_prompt("fr")
        restricted = fr["restricted_product"].message
        assert "Night serum contient des rétinoïdes et exfoliants" in restricted
        assert fr["depth_limit"].message.startswith("2,5 mm")
        en = every_prompt("en")
        assert "Night serum contains retinoids and exfoliants;" in en["restricted_product"].message


class TestStoredPlanStepsSpeakAgain:
    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_step_speech_is_the_planned_voice_text(self, language: str) -> None:
        """A plan step read back from the store (no speech kept) gets the same voice text."""
        profile = ProfileContext("alice", BERLIN, NIGHT, language)
        last = session("s1", END)
        for planned in planning.plan_session(last, PROTOCOL, profile, NOW - timedelta(minutes=1)):
            again = planning.step_speech(last, PROTOCOL, profile, planned.kind, planned.due_at)
            assert planned.speech == again, planned.kind
