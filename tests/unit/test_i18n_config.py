"""The per-profile ``language`` setting and per-language step texts in the protocol."""

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from needlecare.app.discovery import profile_entities
from needlecare.app.ha_calls import ha_call
from needlecare.app.windows import window_event
from needlecare.config import ConfigError, NeedlecareConfig, load_config
from needlecare.config.errors import format_problems
from needlecare.domain import planning
from needlecare.domain.localtime import QuietWindow
from needlecare.domain.planning import ProfileContext
from needlecare.domain.protocol import ProtocolConfig, build_protocols
from needlecare.domain.sessions import Session, SessionStatus
from needlecare.domain.topics import Topics
from needlecare.i18n import translator

END = datetime(2026, 10, 20, 18, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "needlecare.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def session(setting: str = "home") -> Session:
    return Session(
        id="s1",
        profile="alice",
        device_id="pen1",
        setting=setting,  # type: ignore[arg-type]
        status=SessionStatus.COMPLETED,
        started_at=END - timedelta(minutes=15),
        ended_at=END,
        last_seen_at=END,
    )


class TestLanguageSetting:
    def test_default_is_english(self) -> None:
        """A profile without `language` speaks English."""
        config = NeedlecareConfig.model_validate({"profiles": {"a": {"timezone": "UTC"}}})
        assert "en" == config.profiles["a"].language

    @pytest.mark.parametrize(("given", "expected"), [("de", "de"), ("FR", "fr"), ("nl-BE", "nl"),
                                                     ("es_MX", "es")])  # fmt: skip
    def test_a_bcp47_tag_is_read_by_its_primary_subtag(self, given: str, expected: str) -> None:
        """Region subtags and case do not matter: the language is the primary tag."""
        config = NeedlecareConfig.model_validate(
            {"profiles": {"a": {"timezone": "UTC", "language": given}}}
        )
        assert expected == config.profiles["a"].language

    def test_unknown_language_is_an_error_naming_the_field_and_the_choices(
        self, tmp_path: Path
    ) -> None:
        """`language: pt` fails with the dotted path and the supported tags."""
        path = write(tmp_path, "profiles:\n  alice: {timezone: UTC, language: pt}\n")
        with pytest.raises(ConfigError) as caught:
            load_config(path, environ={})
        text = format_problems(caught.value)
        assert "profiles.alice.language" in text
        assert "supported: en, de, fr, es, nl" in text

    def test_two_profiles_two_languages(self, tmp_path: Path) -> None:
        """One home, two people, two languages."""
        path = write(
            tmp_path,
            "profiles:\n  alice: {timezone: Europe/Berlin, language: de}\n"
            "  bob: {timezone: Europe/Berlin}\n",
        )
        config = load_config(path, environ={})
        assert ("de", "en") == (config.profiles["alice"].language, config.profiles["bob"].language)

    def test_the_environment_can_set_it(self, tmp_path: Path) -> None:
        """NEEDLECARE_PROFILES__ALICE__LANGUAGE overrides the file like any value."""
        path = write(tmp_path, "profiles:\n  alice: {timezone: UTC}\n")
        config = load_config(path, environ={"NEEDLECARE_PROFILES__ALICE__LANGUAGE": "es"})
        assert "es" == config.profiles["alice"].language


class TestStepTextsPerLanguage:
    def plan(self, protocol: ProtocolConfig, language: str) -> dict[str, planning.PlannedReminder]:
        home = build_protocols(protocol)["home"]
        profile = ProfileContext("alice", BERLIN, QuietWindow(time(22), time(7)), language)
        return {p.kind: p for p in planning.plan_session(session(), home, profile, END)}

    def test_a_mapping_gives_each_language_its_text(self) -> None:
        """title: {en, de}: German profiles read the German text, placeholders filled."""
        protocol = ProtocolConfig.model_validate(
            {"steps": {"actives_pause": {
                "title": {"en": "No actives", "de": "Keine Wirkstoffe"},
                "message": {"en": "Wait until {until}.", "de": "Warte bis {until}."},
            }}}
        )  # fmt: skip
        de = self.plan(protocol, "de")["actives_pause"]
        assert ("Keine Wirkstoffe", "Warte bis Fr., 23. Okt., 20:00.") == (de.title, de.message)
        en = self.plan(protocol, "en")["actives_pause"]
        assert ("No actives", "Wait until Fri 23 Oct, 20:00.") == (en.title, en.message)

    def test_a_language_left_out_falls_back_to_the_english_entry(self) -> None:
        """A French profile with only {en, de} given reads the English text."""
        protocol = ProtocolConfig.model_validate(
            {"steps": {"soothe": {"title": {"en": "Calm it", "de": "Beruhigen"}}}}
        )
        assert "Calm it" == self.plan(protocol, "fr")["soothe"].title

    def test_a_plain_string_is_for_every_language(self) -> None:
        """A professional's own text stays as written in every language; the voice says it."""
        protocol = ProtocolConfig.model_validate(
            {"steps": {"soothe": {"message": "Use the clinic's balm."}}}
        )
        for language in ("en", "de", "nl"):
            soothe = self.plan(protocol, language)["soothe"]
            assert "Use the clinic's balm." == soothe.message
            assert soothe.speech.endswith("Use the clinic's balm.")

    def test_an_unknown_language_key_names_the_step(self) -> None:
        """title: {pt: ...} is rejected with the step's path."""
        with pytest.raises(ValueError, match=r"steps\.soothe\.title"):
            ProtocolConfig.model_validate({"steps": {"soothe": {"title": {"pt": "Acalme"}}}})


class TestDeliveryTexts:
    def profile(self, language: str) -> NeedlecareConfig:
        return NeedlecareConfig.model_validate(
            {
                "homeassistant": {"url": "http://ha.local:8123"},
                "profiles": {
                    "alice": {
                        "timezone": "Europe/Berlin",
                        "language": language,
                        "notify_service": "notify.mobile_app_alice",
                        "voice": {"service": "tts.speak", "data": {"entity_id": "tts.piper"}},
                    }
                },
            }
        )

    def body(self, **extra: str) -> str:
        return json.dumps(
            {"reminder_id": "rem_1", "profile": "alice", "kind": "soothe", "severity": "warning",
             "title": "Beruhige deine Haut", "message": "Deine Haut ist jetzt empfindlich.",
             **extra}
        )  # fmt: skip

    def test_phone_buttons_in_the_profile_language(self) -> None:
        """Done and Snooze read Erledigt and 'In 30 Min. erinnern'; action ids unchanged."""
        profile = self.profile("de").profiles["alice"]
        call = ha_call(
            channel="mobile", payload=self.body(), profile=profile, send_id=7, snooze_minutes=30
        )
        assert call is not None
        actions = call.data["data"]["actions"]
        assert [
            {"action": "NEEDLECARE_ACK:rem_1:7", "title": "Erledigt"},
            {"action": "NEEDLECARE_SNOOZE:rem_1:7", "title": "In 30 Min. erinnern"},
        ] == actions

    def test_voice_says_the_speech_text_when_there_is_one(self) -> None:
        """The planned voice text wins over title and message."""
        profile = self.profile("de").profiles["alice"]
        call = ha_call(
            channel="voice",
            payload=self.body(speech="Bitte trage jetzt ein Serum auf."),
            profile=profile,
            send_id=1,
            snooze_minutes=30,
        )
        assert call is not None
        assert "Bitte trage jetzt ein Serum auf." == call.data["message"]

    def test_voice_falls_back_to_title_and_message(self) -> None:
        """A reminder read back from the store has no speech: title, then message."""
        profile = self.profile("de").profiles["alice"]
        call = ha_call(
            channel="voice", payload=self.body(), profile=profile, send_id=1, snooze_minutes=30
        )
        assert call is not None
        assert "Beruhige deine Haut. Deine Haut ist jetzt empfindlich." == call.data["message"]

    def test_calendar_event_in_the_profile_language(self) -> None:
        """Summary and description of the next-session window, in Spanish."""
        protocol = build_protocols(None)["professional"]
        event = window_event(session("professional"), protocol, translator("es"))
        assert "Periodo de microneedling (alice)" == event.summary
        assert event.description.startswith("Próxima sesión profesional entre estas fechas.")

    def test_entity_names_translated_ids_unchanged(self) -> None:
        """The German device's entities have German names and the same ids as in English."""
        english = dict(profile_entities(Topics(), "alice", "Alice"))
        german = dict(profile_entities(Topics(), "alice", "Alice", language="de"))
        assert english.keys() == german.keys()
        for topic, config in german.items():
            ids = ("unique_id", "object_id", "default_entity_id")
            assert [english[topic][k] for k in ids] == [config[k] for k in ids]
            assert english[topic].get("payload_press") == config.get("payload_press")
        names = {config["default_entity_id"]: config["name"] for config in german.values()}
        assert "Letzte Behandlung" == names["sensor.needlecare_alice_last_session"]
        assert "Alle bestätigen" == names["button.needlecare_alice_acknowledge_all"]
        assert "Needlecare Alice" == next(iter(german.values()))["device"]["name"]
        assert "Erholungs-Tracker" == next(iter(german.values()))["device"]["model"]
