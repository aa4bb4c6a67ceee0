"""MQTT discovery configs for Home Assistant (PRODUCT §4)."""

import json

from needlecare.app.discovery import bridge_entities, profile_entities, removal_topics
from needlecare.domain.topics import Topics

TOPICS = Topics("needlecare", "homeassistant")


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
            assert "needlecare/status" == config["availability_topic"]
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
        [(topic, config)] = bridge_entities(TOPICS)
        assert "homeassistant/binary_sensor/needlecare_bridge/connectivity/config" == topic
        assert ("needlecare/status", "online", "offline") == (
            config["state_topic"],
            config["payload_on"],
            config["payload_off"],
        )
        assert "availability_topic" not in config
