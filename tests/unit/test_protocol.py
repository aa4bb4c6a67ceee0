"""The care protocol as data: the defaults, step rules, ingredients and overrides."""

from datetime import time, timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from needlecare.domain.protocol import (
    GUARD_STEPS,
    PLAN_STEPS,
    STEP_NAMES,
    CareProtocol,
    Channel,
    Escalation,
    ProtocolConfig,
    Severity,
    Step,
    build_protocols,
    default_protocol,
    ingredient_classes,
)

EXAMPLE_YAML = """
protocol:
  actives_pause: PT96H
  steps:
    soothe: {channels: [mirror, dashboard, mobile], escalation: []}
    serum_window: {enabled: false}
    window_open: {at: "09:00"}
  professional:
    window_open_after: P42D
    window_close_after: P56D
    steps: {window_open: {day: 42}, overdue: {day: 56}}
"""


def config(data: dict[str, Any]) -> ProtocolConfig:
    return ProtocolConfig.model_validate(data)


def error_text(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        config(data)
    return str(caught.value)


class TestDefaultProtocol:
    def test_has_every_step_by_name(self) -> None:
        """Plan steps then guards, each keyed by its own kind."""
        protocol = default_protocol()
        assert list(STEP_NAMES) == list(protocol.steps)
        assert list(STEP_NAMES) == [step.kind for step in protocol.steps.values()]

    def test_soothe_needs_ack_and_escalates(self) -> None:
        """soothe: at the end, mirror and dashboard, acked, then voice and mobile."""
        soothe = default_protocol().step("soothe")
        assert (timedelta(0), Severity.WARNING, True) == (
            soothe.offset,
            soothe.severity,
            soothe.needs_ack,
        )
        assert (Channel.MIRROR, Channel.DASHBOARD) == soothe.channels
        assert (
            Escalation(after=timedelta(minutes=30), channels=(Channel.VOICE,)),
            Escalation(after=timedelta(hours=2), channels=(Channel.MOBILE,)),
        ) == soothe.escalation

    def test_timings(self) -> None:
        """Offsets and local days as PRODUCT §1 gives them."""
        protocol = default_protocol()
        timings = {name: (s.offset, s.day, s.at) for name, s in protocol.steps.items()}
        assert {
            "soothe": (timedelta(0), None, None),
            "serum_window": (timedelta(minutes=30), None, None),
            "actives_pause": (timedelta(0), None, None),
            "actives_resume": (None, None, None),
            "window_open": (None, 28, time(19)),
            "overdue": (None, 42, time(19)),
        } == {name: timings[name] for name in PLAN_STEPS}
        assert {(None, None, None)} == {timings[name] for name in GUARD_STEPS}

    def test_parameters(self) -> None:
        """Pause 72 h, window 28-42 days, redness 60 from day 3, cleanse within 1 h."""
        p = default_protocol()
        assert (
            timedelta(hours=72),
            timedelta(days=28),
            timedelta(days=42),
            60,
            3,
            timedelta(hours=1),
            timedelta(hours=1),
        ) == (
            p.actives_pause,
            p.window_open_after,
            p.window_close_after,
            p.redness_threshold,
            p.redness_after_day,
            p.cleanse_within,
            p.plan_grace,
        )
        assert ("retinoids", "exfoliants") == tuple(p.restricted_ingredients)

    def test_every_step_quotes_its_source(self) -> None:
        """Each step names the rule it implements, for the docs."""
        assert all(step.source for step in default_protocol().steps.values())

    def test_window_open_carries_the_cleanse_rule(self) -> None:
        """The window prompt repeats the clean-and-makeup-free rule."""
        assert "clean and free of makeup" in default_protocol().step("window_open").message


class TestStep:
    def _step(self, **fields: object) -> Step:
        return Step.model_validate({"kind": "x", "title": "t", "message": "m"} | fields)

    def test_offset_and_day_conflict(self) -> None:
        """One timing form only."""
        with pytest.raises(ValidationError, match="either offset or day and at"):
            self._step(channels=["mirror"], offset="PT1H", day=1, at="19:00")

    def test_day_needs_at(self) -> None:
        """A day without a time of day is incomplete."""
        with pytest.raises(ValidationError, match="day and at must be given together"):
            self._step(channels=["mirror"], day=1)

    def test_escalation_is_kept_in_order(self) -> None:
        """Stages are sorted by their delay."""
        step = self._step(
            channels=["mirror"],
            escalation=[
                {"after": "PT2H", "channels": ["mobile"]},
                {"after": 60, "channels": ["voice"]},
            ],
        )
        assert [timedelta(minutes=1), timedelta(hours=2)] == [e.after for e in step.escalation]


class TestCareProtocol:
    def test_window_must_close_after_it_opens(self) -> None:
        """window_close_after later than window_open_after."""
        fields = dict(default_protocol()) | {"window_close_after": timedelta(days=10)}
        with pytest.raises(ValidationError, match="window_close_after must be later"):
            CareProtocol.model_validate(fields)

    def test_needs_every_step(self) -> None:
        """A protocol without a step cannot plan."""
        protocol = default_protocol()
        steps = {k: v for k, v in protocol.steps.items() if k != "overdue"}
        with pytest.raises(ValidationError, match="steps must be exactly"):
            CareProtocol.model_validate(dict(protocol) | {"steps": steps})


class TestIngredientClasses:
    @pytest.mark.parametrize(
        ("ingredients", "expected"),
        [
            (["Retinol 0.3%"], ("retinoids",)),
            (["Glycolic Acid"], ("exfoliants",)),
            (["hyaluronic acid"], ()),
            (["Aqua", "TRETINOIN"], ("retinoids",)),
            (["AHA/BHA complex"], ("exfoliants",)),
            (["Retinyl Palmitate", "Salicylic Acid"], ("retinoids", "exfoliants")),
            (["Sahara sand extract", "niacinamide"], ()),
            ([], ()),
        ],
    )
    def test_matches_synonyms_case_insensitively(
        self, ingredients: list[str], expected: tuple[str, ...]
    ) -> None:
        """Synonyms match at the start of a word, in any case."""
        assert expected == ingredient_classes(ingredients, default_protocol())

    def test_configured_synonyms(self) -> None:
        """An override's synonyms are used."""
        protocol = build_protocols(config({"restricted_ingredients": {"acids": ["azelaic"]}}))
        assert ("acids",) == ingredient_classes(["Azelaic acid 10%"], protocol["home"])


class TestOverrides:
    def test_the_documented_example(self) -> None:
        """The YAML example: home gets the common part, professional both layers."""
        protocols = build_protocols(config(yaml.safe_load(EXAMPLE_YAML)["protocol"]))
        home, pro = protocols["home"], protocols["professional"]
        assert timedelta(hours=96) == home.actives_pause == pro.actives_pause
        soothe = home.step("soothe")
        assert ((Channel.MIRROR, Channel.DASHBOARD, Channel.MOBILE), ()) == (
            soothe.channels,
            soothe.escalation,
        )
        assert False is home.step("serum_window").enabled
        assert (28, time(9)) == (home.step("window_open").day, home.step("window_open").at)
        assert (42, time(9)) == (pro.step("window_open").day, pro.step("window_open").at)
        assert (timedelta(days=28), timedelta(days=42)) == (
            home.window_open_after,
            home.window_close_after,
        )
        assert (timedelta(days=42), timedelta(days=56), 56) == (
            pro.window_open_after,
            pro.window_close_after,
            pro.step("overdue").day,
        )

    def test_no_config_is_the_default_for_both(self) -> None:
        """Without a protocol section both settings use the built-in protocol."""
        assert {"home": default_protocol(), "professional": default_protocol()} == (
            build_protocols(None)
        )

    def test_professional_only(self) -> None:
        """A professional layer leaves home sessions alone."""
        protocols = build_protocols(config({"professional": {"actives_pause": "P5D"}}))
        assert (timedelta(hours=72), timedelta(days=5)) == (
            protocols["home"].actives_pause,
            protocols["professional"].actives_pause,
        )

    def test_unknown_step_is_rejected(self) -> None:
        """A misspelt step name is an error naming it and the known steps."""
        text = error_text({"steps": {"sooth": {"enabled": False}}})
        assert "unknown step 'sooth'; known: soothe, serum_window" in text

    def test_unknown_key_is_rejected(self) -> None:
        """Unknown fields are errors, as everywhere in the config."""
        assert "Extra inputs are not permitted" in error_text({"steps": {"soothe": {"colour": 1}}})

    def test_switching_timing_form(self) -> None:
        """Giving day and at replaces an offset (and vice versa)."""
        protocols = build_protocols(
            config({"steps": {"soothe": {"day": 1, "at": "08:00"}, "overdue": {"offset": "P40D"}}})
        )
        soothe, overdue = protocols["home"].step("soothe"), protocols["home"].step("overdue")
        assert (None, 1, time(8)) == (soothe.offset, soothe.day, soothe.at)
        assert (timedelta(days=40), None, None) == (overdue.offset, overdue.day, overdue.at)

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"steps": {"window_open": {"offset": "PT1H", "day": 3}}}, "either offset or day"),
            ({"steps": {"soothe": {"day": 3}}}, "steps.soothe: day and at must be given"),
            ({"steps": {"window_open": {"offset": None}}}, "needs offset, or day and at"),
            ({"steps": {"too_soon": {"offset": 0}}}, "too_soon: is due when its trigger"),
            ({"steps": {"actives_resume": {"offset": 0}}}, "follows actives_pause"),
            ({"steps": {"soothe": {"title": None}}}, "may not be null"),
            ({"steps": {"soothe": {"channels": []}}}, "at least 1 item"),
            ({"window_open_after": "P50D"}, "window_close_after must be later"),
            ({"professional": {"window_close_after": "P7D"}}, "professional: window_close_after"),
        ],
    )
    def test_invalid_overrides(self, data: dict[str, Any], message: str) -> None:
        """Each broken override fails validation with a message naming the problem."""
        assert message in error_text(data)

    def test_unquoted_yaml_time_is_rejected(self) -> None:
        """YAML 1.1 reads 19:00 unquoted as the number 1140; that must not become 00:19."""
        data = yaml.safe_load("steps: {window_open: {at: 19:00}}")
        assert 1140 == data["steps"]["window_open"]["at"]
        assert 'write the time in quotes, like "19:00"' in error_text(data)

    def test_ingredient_classes_merge(self) -> None:
        """Named classes are replaced, the others kept; an empty list turns one off."""
        protocols = build_protocols(
            config({"restricted_ingredients": {"exfoliants": [], "acids": ["azelaic"]}})
        )
        assert {
            "retinoids": default_protocol().restricted_ingredients["retinoids"],
            "exfoliants": (),
            "acids": ("azelaic",),
        } == dict(protocols["home"].restricted_ingredients)

    def test_seconds_as_text(self) -> None:
        """Durations from the environment arrive as text; digits mean seconds."""
        protocols = build_protocols(config({"actives_pause": "7200", "plan_grace": "PT2H"}))
        assert (timedelta(hours=2), timedelta(hours=2)) == (
            protocols["home"].actives_pause,
            protocols["home"].plan_grace,
        )

    def test_message_override(self) -> None:
        """Texts and severity can be changed per step."""
        protocols = build_protocols(
            config({"steps": {"overdue": {"message": "Book it, {profile}!", "severity": "info"}}})
        )
        overdue = protocols["home"].step("overdue")
        assert ("Book it, {profile}!", Severity.INFO) == (overdue.message, overdue.severity)
