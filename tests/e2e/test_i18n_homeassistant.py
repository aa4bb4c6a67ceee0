"""A German profile in a real Home Assistant: German entity names with the usual entity
ids, German dashboard, phone and voice texts (each release of HA_VERSIONS)."""

import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, DaemonProcess
from support.homeassistant import HomeAssistant
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.e2e

BERLIN = ZoneInfo("Europe/Berlin")
GERMAN_NAMES = {
    ("sensor", "last_session"): "Letzte Behandlung",
    ("sensor", "recovery_day"): "Erholungstag",
    ("sensor", "status"): "Status",
    ("sensor", "next_window_start"): "Nächstes Zeitfenster ab",
    ("sensor", "next_window_end"): "Nächstes Zeitfenster bis",
    ("binary_sensor", "actives_restricted"): "Wirkstoffpause",
    ("sensor", "open_prompts"): "Offene Hinweise",
    ("button", "log_professional_session"): "Professionelle Behandlung eintragen",
    ("button", "acknowledge_all"): "Alle bestätigen",
}
SOOTHE_SPOKEN = (
    "Deine Haut ist nach der Behandlung empfindlich. "
    "Trage jetzt bitte ein beruhigendes Serum oder eine Creme auf."
)


def awake() -> dict[str, str]:
    """Quiet hours a minute long, half a day away (Home Assistant's real clock)."""
    start = datetime.now(BERLIN) + timedelta(hours=12)  # noqa: TID251 - Home Assistant's clock
    return {"start": f"{start:%H:%M}", "end": f"{start + timedelta(minutes=1):%H:%M}"}


def german_profile(
    homeassistant: HomeAssistant, broker: MosquittoBroker, daemon_factory: DaemonFactory
) -> tuple[str, DaemonProcess]:
    profile = f"de{uuid.uuid4().hex[:8]}"
    daemon = daemon_factory(
        broker,
        mqtt={"client_id": f"needlecare-{profile}", "session_expiry_s": 60},
        homeassistant={"url": homeassistant.url, "token": homeassistant.token},
        profiles={
            profile: {
                "timezone": "Europe/Berlin",
                "language": "de",
                "display_name": "Anna",
                "quiet_hours": awake(),
                "notify_service": "notify.test_phone",
                "voice": {"service": "script.announce"},
            }
        },
        devices={f"pen_{profile}": {"owner": profile}},
        protocol={
            "steps": {
                "soothe": {
                    "channels": ["mirror", "dashboard", "mobile", "voice"],
                    "escalation": [],
                },
                "serum_window": {"enabled": False},
            }
        },
    ).start()
    return profile, daemon


def reminders(daemon: DaemonProcess, profile: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        daemon.cli("reminders", "--json", "--profile", profile).stdout
    )
    return rows


class TestGermanProfileInHomeAssistant:
    def test_entities_named_in_german_with_the_usual_ids(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Each entity of the profile's device: German name, entity id as in English."""
        profile, _ = german_profile(homeassistant, ha_mosquitto, daemon_factory)
        node = f"needlecare_{profile}"

        def ours() -> dict[str, dict[str, Any]]:
            return {
                e["unique_id"]: e
                for e in homeassistant.entity_registry()
                if e["unique_id"].startswith(f"{node}_")
            }

        entries = homeassistant.wait_for(
            lambda: len(ours()) == len(GERMAN_NAMES) and ours(), what="the profile's entities"
        )
        expected = {
            f"{node}_{name}": (f"{component}.{node}_{name}", german)
            for (component, name), german in GERMAN_NAMES.items()
        }
        assert expected == {
            unique_id: (entry["entity_id"], entry["original_name"])
            for unique_id, entry in entries.items()
        }
        devices = homeassistant.websocket("config/device_registry/list")
        [device] = [d for d in devices if [["mqtt", node]] == d.get("identifiers")]
        assert ("Needlecare Anna", "Erholungs-Tracker") == (device["name"], device["model"])

    def test_dashboard_phone_and_voice_speak_german(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Soothe: a German persistent notification, phone message and spoken text."""
        profile, daemon = german_profile(homeassistant, ha_mosquitto, daemon_factory)
        client = mqtt_client_factory(ha_mosquitto)
        topic = f"needlecare/device/pen_{profile}/event"
        for kind in ("session_started", "session_ended"):
            event = {"event_id": f"{kind}-{profile}", "type": kind}
            client.publish(topic, json.dumps(event).encode())

        def soothe_id() -> str | None:
            rows = [r for r in reminders(daemon, profile) if r["kind"] == "soothe"]
            return rows[0]["id"] if rows else None

        rid = homeassistant.wait_for(soothe_id, what="the soothe reminder")
        shown = homeassistant.wait_for(
            lambda: next(
                (n for n in homeassistant.persistent_notifications()
                 if n["notification_id"] == f"needlecare_{rid}"),
                None,
            ),
            what="the persistent notification",
        )  # fmt: skip
        assert "Beruhige deine Haut" == shown["title"]
        assert shown["message"].startswith("Deine Haut ist jetzt empfindlich.")
        homeassistant.wait_for(
            lambda: SOOTHE_SPOKEN in homeassistant.voice_messages(), what="the German voice text"
        )
        homeassistant.wait_for(
            lambda: any(
                "Deine Haut ist jetzt empfindlich." in line
                for line in homeassistant.notify_file_lines()
            ),
            what="the German phone message",
        )
        # Machine values stay: the state's status and the prompt's kind.
        status = f"sensor.needlecare_{profile}_status"
        homeassistant.wait_for(
            lambda: (homeassistant.state(status) or {}).get("state") == "recovering",
            what="status recovering",
        )
