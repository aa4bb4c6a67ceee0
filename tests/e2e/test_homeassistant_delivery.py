"""Delivery to a real Home Assistant (each release of HA_VERSIONS): dashboard, phone,
voice, entities, outages.

The daemon runs as a process against the session's Mosquitto, to which Home
Assistant's MQTT integration is connected; each test uses a profile of its own.
"""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from needlecare import __version__
from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonProcess, wait_until
from support.homeassistant import HomeAssistant
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.e2e

BERLIN = ZoneInfo("Europe/Berlin")
SLOW = 60.0  # bound for waits that include Home Assistant retries


@dataclass
class Setup:
    daemon: DaemonProcess
    profile: str
    device: str

    @property
    def node(self) -> str:
        return f"needlecare_{self.profile}"

    def title(self) -> str:
        return f"Soothe {self.profile}"

    def reminders(self, status: str | None = None) -> list[dict[str, Any]]:
        args = ["reminders", "--json", "--profile", self.profile]
        if status:
            args += ["--status", status]
        rows: list[dict[str, Any]] = json.loads(self.daemon.cli(*args).stdout)
        return rows

    def reminder(self, kind: str) -> dict[str, Any]:
        return next(r for r in self.reminders() if r["kind"] == kind)

    def outbox(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.daemon.cli("outbox", "--all", "--json").stdout)
        return [row for row in rows if row["profile"] == self.profile]


def quiet_window(*, covering_now: bool) -> dict[str, str]:
    """Quiet hours around now (Berlin), or a minute half a day away."""
    now = datetime.now(BERLIN)  # noqa: TID251 - matches Home Assistant's real clock
    if covering_now:
        start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    else:
        start = now + timedelta(hours=12)
        end = start + timedelta(minutes=1)
    return {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}


@pytest.fixture
def setup(
    homeassistant: HomeAssistant,
    ha_mosquitto: MosquittoBroker,
    daemon_factory: Callable[..., DaemonProcess],
) -> Callable[..., Setup]:
    def make(
        *, quiet_now: bool = False, person: str | None = None, display_name: str | None = None
    ) -> Setup:
        profile = f"p{uuid.uuid4().hex[:8]}"
        device = f"pen_{profile}"
        protocol = {
            "steps": {
                "soothe": {
                    "title": f"Soothe {profile}",
                    "channels": ["mirror", "dashboard", "mobile", "voice"],
                    "escalation": [],
                },
                "actives_pause": {"channels": ["mirror", "dashboard", "mobile"]},
                "serum_window": {"enabled": False},
            }
        }
        daemon = daemon_factory(
            ha_mosquitto,
            mqtt={"client_id": f"needlecare-{profile}", "session_expiry_s": 60},
            homeassistant={"url": homeassistant.url, "token": homeassistant.token},
            profiles={
                profile: {
                    "timezone": "Europe/Berlin",
                    "quiet_hours": quiet_window(covering_now=quiet_now),
                    "notify_service": "notify.test_phone",
                    "voice": {"service": "script.announce"},
                    **({"person": person} if person else {}),
                    **({"display_name": display_name} if display_name else {}),
                }
            },
            devices={device: {"owner": profile}},
            protocol=protocol,
        ).start()
        return Setup(daemon, profile, device)

    return make


def treat(factory: MqttClientFactory, broker: MosquittoBroker, setup: Setup) -> None:
    client = factory(broker)
    topic = f"needlecare/device/{setup.device}/event"
    client.publish(
        topic, json.dumps({"event_id": f"s-{setup.profile}", "type": "session_started"}).encode()
    )
    client.publish(
        topic, json.dumps({"event_id": f"e-{setup.profile}", "type": "session_ended"}).encode()
    )


PROFILE_ENTITIES = (
    ("sensor", "last_session"),
    ("sensor", "recovery_day"),
    ("sensor", "status"),
    ("sensor", "next_window_start"),
    ("sensor", "next_window_end"),
    ("binary_sensor", "actives_restricted"),
    ("sensor", "open_prompts"),
    ("button", "log_professional_session"),
    ("button", "acknowledge_all"),
)
BRIDGE_ENTITIES = (
    ("binary_sensor", "connectivity"),
    ("sensor", "dead_letters"),
    ("sensor", "outbox_backlog"),
    ("sensor", "last_event"),
    ("sensor", "version"),
)


def expected_entity_ids(setup: Setup) -> dict[str, str]:
    """unique_id -> entity id, as docs/homeassistant.md lists them."""
    node = setup.node
    ids = {f"{node}_{name}": f"{component}.{node}_{name}" for component, name in PROFILE_ENTITIES}
    ids |= {
        f"needlecare_bridge_{name}": f"{component}.needlecare_bridge_{name}"
        for component, name in BRIDGE_ENTITIES
    }
    for name in ("last_heartbeat", "battery"):
        unique_id = f"needlecare_bridge_{setup.device}_{name}"
        ids[unique_id] = f"sensor.{unique_id}"
    return ids


def notification(hass: HomeAssistant, reminder_id: str) -> dict[str, Any] | None:
    return next(
        (
            n
            for n in hass.persistent_notifications()
            if n["notification_id"] == f"needlecare_{reminder_id}"
        ),
        None,
    )


class TestDelivery:
    def test_a_session_reaches_the_dashboard_phone_voice_and_entities(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        setup: Callable[..., Setup],
    ) -> None:
        """Soothe shows as a persistent notification, on the phone and by voice; entities follow."""
        s = setup()
        treat(mqtt_client_factory, ha_mosquitto, s)
        soothe = homeassistant.wait_for(
            lambda: (
                notification(homeassistant, s.reminder("soothe")["id"]) if s.reminders() else None
            )
        )
        assert s.title() == soothe["title"]
        event = homeassistant.wait_for(
            lambda: next(
                (n for n in homeassistant.persistent_notifications()
                 if n["notification_id"] == f"event_{s.reminder('soothe')['id']}"),
                None,
            ),
            what="the needlecare_reminder event, seen by an automation",
        )  # fmt: skip
        assert f"soothe {s.profile}" == event["message"]
        homeassistant.wait_for(
            lambda: any(s.title() in m for m in homeassistant.voice_messages()), what="voice"
        )
        homeassistant.wait_for(
            lambda: any(
                "Your skin is sensitive now" in line for line in homeassistant.notify_file_lines()
            ),
            what="the phone notification",
        )
        expected_states = {
            f"sensor.{s.node}_status": "recovering",
            f"sensor.{s.node}_recovery_day": "0",
            f"binary_sensor.{s.node}_actives_restricted": "on",
            f"sensor.{s.node}_open_prompts": "2",
        }
        homeassistant.wait_for(
            lambda: all(
                (homeassistant.state(entity) or {}).get("state") == value
                for entity, value in expected_states.items()
            ),
            what=f"entity states {expected_states}",
        )
        registered = {
            e["unique_id"]: e["entity_id"]
            for e in homeassistant.entity_registry()
            if e["platform"] == "mqtt"
        }
        assert expected_entity_ids(s) == {
            unique_id: registered.get(unique_id) for unique_id in expected_entity_ids(s)
        }
        assert 0 == s.daemon.stop()
        homeassistant.wait_for(
            lambda: (
                (homeassistant.state(f"sensor.{s.node}_status") or {}).get("state") == "unavailable"
            ),
            what="entities unavailable after the daemon stopped",
        )

    def test_log_professional_session_button_records_a_session(
        self, homeassistant: HomeAssistant, setup: Callable[..., Setup]
    ) -> None:
        """Pressing Log professional session in HA records a professional session."""
        s = setup()
        button = f"button.{s.node}_log_professional_session"
        homeassistant.wait_for(
            lambda: (homeassistant.state(button) or {}).get("state") not in {None, "unavailable"},
            what="the button available (a press on an unavailable one does nothing)",
        )
        homeassistant.call_service("button", "press", {"entity_id": button})

        def sessions() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = json.loads(
                s.daemon.cli("sessions", "--json", "--profile", s.profile).stdout
            )
            return rows

        wait_until(lambda: len(sessions()) == 1, timeout=SLOW, what="the logged session")
        assert "professional" == sessions()[0]["setting"]

    def test_acknowledge_all_button_acks_and_dismisses(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        setup: Callable[..., Setup],
    ) -> None:
        """Pressing the Acknowledge-all button in HA acks, and the notification goes away."""
        s = setup()
        treat(mqtt_client_factory, ha_mosquitto, s)
        homeassistant.wait_for(
            lambda: s.reminders("sent") and notification(homeassistant, s.reminder("soothe")["id"])
        )
        button = f"button.{s.node}_acknowledge_all"
        homeassistant.wait_for(lambda: homeassistant.state(button), what="the button entity")
        homeassistant.call_service("button", "press", {"entity_id": button})
        wait_until(lambda: len(s.reminders("acked")) == 2, timeout=SLOW, what="both prompts acked")
        soothe_id = s.reminder("soothe")["id"]
        wait_until(
            lambda: notification(homeassistant, soothe_id) is None, timeout=SLOW, what="dismissed"
        )
        homeassistant.wait_for(
            lambda: "clear_notification" in homeassistant.notify_file_lines(),
            what="the phone cleared",
        )

    def test_phone_buttons_ack_and_snooze(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        setup: Callable[..., Setup],
    ) -> None:
        """mobile_app_notification_action events fired in HA ack one prompt and snooze another."""
        s = setup()
        treat(mqtt_client_factory, ha_mosquitto, s)

        def phoned() -> set[str]:
            kinds = {r["id"]: r["kind"] for r in s.reminders()}
            return {
                kinds.get(row["reminder_id"], "")
                for row in s.outbox()
                if row["channel"] == "mobile" and row["status"] == "sent"
            }

        wait_until(lambda: {"soothe", "actives_pause"} <= phoned(), timeout=SLOW, what="phoned")
        sent = {row["reminder_id"]: row["id"] for row in s.outbox() if row["channel"] == "mobile"}
        soothe, pause = s.reminder("soothe")["id"], s.reminder("actives_pause")["id"]
        homeassistant.fire_event(
            "mobile_app_notification_action", {"action": f"NEEDLECARE_ACK:{soothe}:{sent[soothe]}"}
        )
        homeassistant.fire_event(
            "mobile_app_notification_action", {"action": f"NEEDLECARE_SNOOZE:{pause}:{sent[pause]}"}
        )
        wait_until(
            lambda: (
                (s.reminder("soothe")["status"], s.reminder("actives_pause")["status"])
                == ("acked", "snoozed")
            ),
            timeout=SLOW,
            what="acked and snoozed",
        )


class TestEntities:
    def test_entity_ids_stay_when_the_display_name_changes(
        self,
        homeassistant: HomeAssistant,
        setup: Callable[..., Setup],
    ) -> None:
        """A renamed profile renames its device in HA; every entity id stays as it was."""
        s = setup(display_name="Alice")
        status = f"sensor.{s.node}_status"
        homeassistant.wait_for(lambda: homeassistant.state(status), what=status)

        def ours() -> dict[str, str]:
            return {
                e["unique_id"]: e["entity_id"]
                for e in homeassistant.entity_registry()
                if e["unique_id"].startswith(f"{s.node}_")
            }

        before = homeassistant.wait_for(lambda: len(ours()) == 9 and ours(), what="9 entities")
        assert 0 == s.daemon.stop()
        s.daemon.config["profiles"][s.profile]["display_name"] = "Alicia Müller"
        s.daemon.write_config()
        s.daemon.start()
        homeassistant.wait_for(
            lambda: any(
                d.get("name") == "Needlecare Alicia Müller"
                for d in homeassistant.websocket("config/device_registry/list")
            ),
            what="the device renamed",
        )
        assert before == ours()

    def test_bridge_diagnostics_show_dead_letters_and_the_device(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        setup: Callable[..., Setup],
    ) -> None:
        """A rejected message and a heartbeat show on the bridge's diagnostic sensors."""
        s = setup()
        client = mqtt_client_factory(ha_mosquitto)
        topic = f"needlecare/device/{s.device}/event"
        client.publish(topic, b"{not json")
        heartbeat = {"event_id": f"hb-{s.profile}", "type": "heartbeat", "battery_pct": 64}
        client.publish(topic, json.dumps(heartbeat).encode())
        battery = f"sensor.needlecare_bridge_{s.device}_battery"
        homeassistant.wait_for(
            lambda: (homeassistant.state(battery) or {}).get("state") == "64",
            timeout=SLOW,
            what=f"{battery} at 64",
        )
        dead = homeassistant.wait_for(
            lambda: (
                (got := homeassistant.state("sensor.needlecare_bridge_dead_letters"))
                and got["state"] == "1"
                and got
            ),
            timeout=SLOW,
            what="one dead letter",
        )
        assert dead["attributes"]["latest_reason"]
        heard = homeassistant.state(f"sensor.needlecare_bridge_{s.device}_last_heartbeat")
        assert heard is not None
        assert heard["state"] not in {"unknown", "unavailable"}
        version = homeassistant.state("sensor.needlecare_bridge_version")
        assert version is not None
        assert __version__ == version["state"]
        categories = {
            e["entity_id"]: e.get("entity_category")
            for e in homeassistant.entity_registry()
            if e["unique_id"].startswith("needlecare_bridge_")
            and not e["unique_id"].endswith("_connectivity")
        }
        assert categories
        assert {"diagnostic"} == set(categories.values())


class TestToken:
    def test_a_bad_token_is_a_clear_error_without_a_retry_loop(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: Callable[..., DaemonProcess],
    ) -> None:
        """A refused token stops Home Assistant delivery once, says why, and MQTT carries on."""
        bad = "not-a-valid-token-0123456789"
        daemon = daemon_factory(
            ha_mosquitto,
            mqtt={"client_id": f"needlecare-{uuid.uuid4().hex[:6]}", "session_expiry_s": 60},
            homeassistant={"url": homeassistant.url, "token": bad},
        ).start()
        watcher = mqtt_client_factory(ha_mosquitto)
        watcher.subscribe("needlecare/mirror/hallway/notify")
        client = mqtt_client_factory(ha_mosquitto)
        client.publish(
            "needlecare/device/pen1/event", b'{"event_id": "bt-s", "type": "session_started"}'
        )
        client.publish(
            "needlecare/device/pen1/event", b'{"event_id": "bt-e", "type": "session_ended"}'
        )
        watcher.received.wait_for(lambda got: len(got) >= 1)
        wait_until(lambda: daemon.log_count("homeassistant_auth_failed") >= 1, timeout=SLOW)
        tries = json.loads(daemon.cli("outbox", "--json").stdout)
        assert 1 == sum(item["attempts"] for item in tries)
        assert bad not in daemon.log_text()
        assert daemon.alive()


class TestQuietHours:
    def test_voice_waits_for_the_end_of_quiet_hours(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        setup: Callable[..., Setup],
    ) -> None:
        """Inside quiet hours the dashboard gets the prompt at once; the voice call waits."""
        s = setup(quiet_now=True)
        treat(mqtt_client_factory, ha_mosquitto, s)
        homeassistant.wait_for(
            lambda: s.reminders("sent") and notification(homeassistant, s.reminder("soothe")["id"])
        )
        wait_until(
            lambda: all(
                row["status"] != "pending" for row in s.outbox() if row["channel"] != "voice"
            ),
            timeout=SLOW,
            what="everything but the voice call sent",
        )
        [voice] = [row for row in s.outbox() if row["channel"] == "voice"]
        assert "pending" == voice["status"]
        assert datetime.fromisoformat(voice["not_before"]) > datetime.now(BERLIN)  # noqa: TID251
        assert not any(s.title() in m for m in homeassistant.voice_messages())


class TestVoiceAtHome:
    def test_voice_is_skipped_while_the_person_is_away(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        setup: Callable[..., Setup],
    ) -> None:
        """With only_when_home and a person who is not home, nothing is said; the rest goes out."""
        homeassistant.wait_for(lambda: homeassistant.state("person.away_tester"), what="the person")
        s = setup(person="person.away_tester")
        treat(mqtt_client_factory, ha_mosquitto, s)
        wait_until(
            lambda: (
                [row["status"] for row in s.outbox() if row["channel"] == "voice"] == ["failed"]
            ),
            timeout=SLOW,
            what="the voice call skipped",
        )
        [voice] = [row for row in s.outbox() if row["channel"] == "voice"]
        assert "person.away_tester is not home" == voice["last_error"]
        assert not any(s.title() in m for m in homeassistant.voice_messages())
        assert notification(homeassistant, s.reminder("soothe")["id"]) is not None


class TestOutages:
    def test_home_assistant_down_then_back_delivers_once(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        setup: Callable[..., Setup],
    ) -> None:
        """HA stopped, a session happens, HA back: the prompts arrive, each once."""
        s = setup()
        homeassistant.stop()
        try:
            treat(mqtt_client_factory, ha_mosquitto, s)
            wait_until(lambda: s.daemon.log_count("homeassistant_unavailable") >= 1, timeout=SLOW)
        finally:
            homeassistant.start()
        soothe_id = homeassistant.wait_for(
            lambda: s.reminders("sent") and s.reminder("soothe")["id"]
        )
        homeassistant.wait_for(
            lambda: notification(homeassistant, soothe_id), timeout=SLOW, what="the notification"
        )
        wait_until(
            lambda: all(row["status"] == "sent" for row in s.outbox()),
            timeout=SLOW,
            what="outbox empty",
        )
        spoken = [m for m in homeassistant.voice_messages() if s.title() in m]
        assert 1 == len(spoken)
        ids = [n["notification_id"] for n in homeassistant.persistent_notifications()]
        assert 1 == ids.count(f"needlecare_{soothe_id}")

    def test_entities_come_back_after_home_assistant_restarts_with_wiped_mqtt_state(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        setup: Callable[..., Setup],
    ) -> None:
        """Retained discovery gone from the broker: HA's birth message brings entities back."""
        s = setup()
        treat(mqtt_client_factory, ha_mosquitto, s)
        status = f"sensor.{s.node}_status"
        homeassistant.wait_for(
            lambda: (homeassistant.state(status) or {}).get("state") == "recovering"
        )
        # Home Assistant down while the broker forgets every retained discovery config.
        homeassistant.stop()
        try:
            wiper = mqtt_client_factory(ha_mosquitto)
            wiper.subscribe("homeassistant/+/+/+/config")
            wiper.subscribe("probe/wiped")
            wiper.publish("probe/wiped", b"x")
            got = wiper.received.wait_for(lambda got: any(m.topic == "probe/wiped" for m in got))
            for message in got:
                if message.topic != "probe/wiped" and message.payload:
                    wiper.publish(message.topic, b"", retain=True)
        finally:
            homeassistant.start()
        homeassistant.wait_for(
            lambda: (homeassistant.state(status) or {}).get("state") == "recovering",
            timeout=SLOW,
            what="the entity back with its state",
        )
        assert s.daemon.log_count("homeassistant_birth") >= 1
