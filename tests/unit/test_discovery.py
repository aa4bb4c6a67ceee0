"""MQTT discovery configs for Home Assistant (PRODUCT §4)."""

import json
from typing import Any

from needlecare import __version__
from needlecare.app.discovery import (
    bridge_entities,
    device_removal_topics,
    health_topic,
    profile_entities,
    removal_topics,
)
from needlecare.domain.topics import Topics

TOPICS = Topics("needlecare", "homeassistant")


def every_config(devices: tuple[str, ...] = ("pen1",)) -> list[tuple[str, dict[str, Any]]]:
    return [
        *bridge_entities(TOPICS, devices),
        *profile_entities(TOPICS, "alice", "Alice"),
        *profile_entities(TOPICS, "bob-2", None),
    ]


def component_of(topic: str) -> str:
    return topic.split("/")[1]


def status_topic(config: dict[str, Any]) -> str:
    """The daemon's status topic, whichever form of availability the config uses."""
    if "availability" in config:
        assert "all" == config["availability_mode"]
        return str(config["availability"][0]["topic"])
    return str(config["availability_topic"])


class TestNullableTimestamps:
    def test_a_null_timestamp_makes_the_entity_unavailable_not_an_invalid_state(self) -> None:
        """Every timestamp sensor: a valid state always, unavailable while the value is null."""
        timestamps = [c for _, c in every_config() if c.get("device_class") == "timestamp"]
        assert 2 * 3 + 2 == len(timestamps)  # per profile 3; last event, a heartbeat
        for config in timestamps:
            [status, value] = config["availability"]
            assert {"topic": "needlecare/status"} == status
            assert config["state_topic"] == value["topic"]
            assert "'online' if" in value["value_template"]
            assert "1970-01-01T00:00:00+00:00" in config["value_template"]
            assert "None" not in config["value_template"]
            assert "_set_when" not in config


class TestIdentity:
    def test_every_entity_carries_default_entity_id_origin_and_unique_id(self) -> None:
        """default_entity_id is <component>.<object_id>; origin names Needlecare; ids unique."""
        configs = every_config()
        for topic, config in configs:
            component = component_of(topic)
            assert f"{component}.{config['object_id']}" == config["default_entity_id"]
            assert {
                "name": "Needlecare",
                "sw_version": __version__,
                "support_url": config["origin"]["support_url"],
            } == config["origin"]
            assert config["origin"]["support_url"].startswith("https://")
            assert config["unique_id"]
        unique_ids = [config["unique_id"] for _, config in configs]
        assert len(unique_ids) == len(set(unique_ids))

    def test_the_entity_ids_of_the_contract(self) -> None:
        """The documented table (docs/homeassistant.md): one id per entity, never a name."""
        ids = [config["default_entity_id"] for _, config in every_config()[:7]]
        expected = [
            "binary_sensor.needlecare_bridge_connectivity",
            "sensor.needlecare_bridge_dead_letters",
            "sensor.needlecare_bridge_outbox_backlog",
            "sensor.needlecare_bridge_last_event",
            "sensor.needlecare_bridge_version",
            "sensor.needlecare_bridge_pen1_last_heartbeat",
            "sensor.needlecare_bridge_pen1_battery",
        ]
        assert expected == ids
        alice = [
            config["default_entity_id"] for _, config in profile_entities(TOPICS, "alice", "A")
        ]
        assert [
            "sensor.needlecare_alice_last_session",
            "sensor.needlecare_alice_recovery_day",
            "sensor.needlecare_alice_status",
            "sensor.needlecare_alice_next_window_start",
            "sensor.needlecare_alice_next_window_end",
            "binary_sensor.needlecare_alice_actives_restricted",
            "sensor.needlecare_alice_open_prompts",
            "button.needlecare_alice_log_professional_session",
            "button.needlecare_alice_acknowledge_all",
        ] == alice

    def test_a_hyphen_in_a_slug_becomes_an_underscore_in_the_entity_id(self) -> None:
        """Home Assistant slugifies object_id; default_entity_id must already be valid."""
        [(_, status)] = [
            (t, c)
            for t, c in profile_entities(TOPICS, "bob-2", None)
            if t.endswith("/status/config")
        ]
        assert "sensor.needlecare_bob_2_status" == status["default_entity_id"]
        assert "needlecare_bob_2_status" == status["object_id"]
        assert "needlecare_bob-2_status" == status["unique_id"]  # as before: the registry key

    def test_ids_do_not_follow_the_display_name(self) -> None:
        """Renaming a profile (or translating its names) changes names, never ids."""

        def ids(display_name: str | None) -> list[tuple[str, str, str]]:
            return [
                (c["unique_id"], c["object_id"], c["default_entity_id"])
                for _, c in profile_entities(TOPICS, "alice", display_name)
            ]

        assert ids("Alice") == ids("Alicia Müller") == ids(None)

    def test_ids_do_not_follow_the_language(self) -> None:
        """Names are translated (PRODUCT §8); ids are the same in every language."""

        def ids(language: str) -> list[str]:
            return [
                c["default_entity_id"]
                for _, c in profile_entities(TOPICS, "alice", "Alice", language=language)
            ]

        names_de = [c["name"] for _, c in profile_entities(TOPICS, "alice", None, language="de")]
        names_en = [c["name"] for _, c in profile_entities(TOPICS, "alice", None)]
        assert names_de != names_en
        assert ids("en") == ids("de") == ids("fr") == ids("es") == ids("nl")


class TestProfileEntities:
    def test_every_entity_of_the_contract(self) -> None:
        """A profile has the sensors, the binary sensor and both buttons."""
        topics = [topic for topic, _ in profile_entities(TOPICS, "alice", "Alice")]
        expected = [
            "homeassistant/sensor/needlecare_alice/last_session/config",
            "homeassistant/sensor/needlecare_alice/recovery_day/config",
            "homeassistant/sensor/needlecare_alice/status/config",
            "homeassistant/sensor/needlecare_alice/next_window_start/config",
            "homeassistant/sensor/needlecare_alice/next_window_end/config",
            "homeassistant/binary_sensor/needlecare_alice/actives_restricted/config",
            "homeassistant/sensor/needlecare_alice/open_prompts/config",
            "homeassistant/button/needlecare_alice/log_professional_session/config",
            "homeassistant/button/needlecare_alice/acknowledge_all/config",
        ]
        assert expected == topics

    def test_entities_share_the_device_and_availability(self) -> None:
        """Every entity names the profile's device and goes unavailable with the daemon."""
        for _, config in profile_entities(TOPICS, "alice", "Alice"):
            assert "needlecare/status" == status_topic(config)
            assert ["needlecare_alice"] == config["device"]["identifiers"]
            assert "Needlecare Alice" == config["device"]["name"]
            assert config["unique_id"].startswith("needlecare_alice_")

    def test_buttons_send_commands(self) -> None:
        """The buttons publish log_session (professional) and ack_all to the command topic."""
        buttons = {
            config["unique_id"]: config
            for topic, config in profile_entities(TOPICS, "alice", None)
            if "/button/" in topic
        }
        ack = buttons["needlecare_alice_acknowledge_all"]
        assert "needlecare/profile/alice/command" == ack["command_topic"]
        assert {"action": "ack_all"} == json.loads(ack["payload_press"])
        log = json.loads(buttons["needlecare_alice_log_professional_session"]["payload_press"])
        assert {"action": "log_session", "setting": "professional"} == log

    def test_removal_covers_every_config(self) -> None:
        """Removing a profile empties exactly its config topics."""
        expected = [topic for topic, _ in profile_entities(TOPICS, "bob", None)]
        assert expected == removal_topics(TOPICS, "bob")


class TestBridge:
    def test_connectivity_follows_the_status_topic(self) -> None:
        """The bridge's connectivity sensor reads online/offline and has no availability."""
        [(topic, config), *_] = bridge_entities(TOPICS)
        assert "homeassistant/binary_sensor/needlecare_bridge/connectivity/config" == topic
        assert ("needlecare/status", "online", "offline") == (
            config["state_topic"],
            config["payload_on"],
            config["payload_off"],
        )
        assert "availability_topic" not in config

    def test_diagnostics_read_the_health_topic(self) -> None:
        """Every other bridge entity is a diagnostic sensor on the bridge device."""
        [_, *diagnostics] = bridge_entities(TOPICS, ["pen1"])
        assert 6 == len(diagnostics)
        for topic, config in diagnostics:
            assert topic.startswith("homeassistant/sensor/needlecare_bridge/")
            assert "diagnostic" == config["entity_category"]
            assert "needlecare/bridge/health" == health_topic(TOPICS) == config["state_topic"]
            assert "needlecare/status" == status_topic(config)
            assert ["needlecare_bridge"] == config["device"]["identifiers"]
        dead = dict(diagnostics)["homeassistant/sensor/needlecare_bridge/dead_letters/config"]
        assert "needlecare/bridge/health" == dead["json_attributes_topic"]
        assert "latest_reason" in dead["json_attributes_template"]

    def test_a_device_removed_from_the_config_loses_its_diagnostics(self) -> None:
        """The removal topics are exactly the device's two configs."""
        assert [
            "homeassistant/sensor/needlecare_bridge/pen1_last_heartbeat/config",
            "homeassistant/sensor/needlecare_bridge/pen1_battery/config",
        ] == device_removal_topics(TOPICS, "pen1")
