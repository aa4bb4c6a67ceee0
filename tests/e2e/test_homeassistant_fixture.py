"""The ``homeassistant`` fixture: a real Home Assistant that the e2e tests can rely on."""

import json
import uuid
from typing import Any

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.homeassistant import UNABLE_TO_INSTALL, HomeAssistant
from support.homeassistant_client import http_request
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.e2e


class TestHomeAssistantFixture:
    """What the e2e tests need from Home Assistant works as the fixture promises."""

    def test_api_answers_with_the_token(self, homeassistant: HomeAssistant) -> None:
        """The long-lived token opens the REST API."""
        assert {"message": "API running."} == homeassistant.rest("GET", "/api/")

    def test_persistent_notification_is_visible(self, homeassistant: HomeAssistant) -> None:
        """A notification created through a service call is read back over the websocket."""
        notification_id = f"fixture_{uuid.uuid4().hex[:8]}"
        data = {"notification_id": notification_id, "title": "Hello", "message": "Rest well"}

        homeassistant.call_service("persistent_notification", "create", data)

        notifications = homeassistant.persistent_notifications()
        found = [item for item in notifications if item["notification_id"] == notification_id]
        assert [("Hello", "Rest well")] == [(item["title"], item["message"]) for item in found]

    def test_announce_records_voice_messages(self, homeassistant: HomeAssistant) -> None:
        """script.announce records what it was asked to say, even twice in one second."""
        first, second = f"Apply serum {uuid.uuid4().hex[:6]}", f"Rest {uuid.uuid4().hex[:6]}"

        homeassistant.call_service("script", "announce", {"message": first})
        homeassistant.call_service("script", "announce", {"message": second})

        homeassistant.wait_for(
            lambda: {first, second} <= set(homeassistant.voice_messages()),
            what="both announcements",
        )
        spoken = [m for m in homeassistant.voice_messages() if m in {first, second}]
        assert [first, second] == spoken

    def test_notify_writes_a_line(self, homeassistant: HomeAssistant) -> None:
        """notify.test_phone appends the message to its file."""
        message = f"Time for sunscreen {uuid.uuid4().hex[:6]}"

        homeassistant.call_service("notify", "test_phone", {"message": message, "title": "Care"})

        assert message == homeassistant.notify_file_lines()[-1]

    def test_mqtt_discovery_creates_an_entity(
        self,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
    ) -> None:
        """A retained discovery config on the broker becomes an entity-registry entry."""
        unique_id = f"fixture_test_value_{uuid.uuid4().hex[:8]}"
        topic = "homeassistant/sensor/fixture_test/value/config"
        config = {"name": "Fixture test value", "state_topic": "fixture_test/value"}
        client = mqtt_client_factory(ha_mosquitto)

        client.publish(topic, json.dumps({**config, "unique_id": unique_id}).encode(), retain=True)
        try:
            entry = homeassistant.wait_for(
                lambda: _registry_entry(homeassistant, unique_id), what=f"entity {unique_id}"
            )
        finally:
            client.publish(topic, b"", retain=True)  # removes the entity and the retained config

        assert "mqtt" == entry["platform"]
        assert entry["entity_id"].startswith("sensor.")

    def test_restart_keeps_the_token(self, homeassistant: HomeAssistant) -> None:
        """After a clean restart the same token still works, and MQTT is loaded again."""
        token = homeassistant.token

        homeassistant.restart()

        assert token == homeassistant.token
        answer = http_request("GET", f"{homeassistant.url}/api/", token=token)
        assert {"message": "API running."} == answer
        assert ["loaded"] == [e["state"] for e in homeassistant.config_entries("mqtt")]


def _registry_entry(homeassistant: HomeAssistant, unique_id: str) -> dict[str, Any] | None:
    entries = homeassistant.entity_registry()
    return next((entry for entry in entries if entry.get("unique_id") == unique_id), None)


class TestHomeAssistantLog:
    """Runs after the other e2e tests of its release (files and tests run in order)."""

    def test_no_requirement_was_missing_and_nothing_was_said_about_needlecare(
        self, homeassistant: HomeAssistant
    ) -> None:
        """No "Unable to install package", and no warning or error naming Needlecare."""
        log = homeassistant.log_text()
        assert [] == [line for line in log.splitlines() if UNABLE_TO_INSTALL in line]
        about_us = [
            line
            for line in log.splitlines()
            if (" WARNING (" in line or " ERROR (" in line) and "needlecare" in line.lower()
        ]
        assert [] == about_us
