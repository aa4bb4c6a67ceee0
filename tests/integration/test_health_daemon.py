"""The bridge's health topic, published by a real daemon (no Home Assistant needed)."""

import json
from typing import Any

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, wait_until
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.integration

HEALTH = "needlecare/bridge/health"


class TestHealthTopic:
    def test_dead_letters_heartbeats_and_battery_reach_the_health_topic(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """A rejected message and a heartbeat show up in the retained health JSON."""
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe(HEALTH)
        daemon = daemon_factory(mosquitto).start()
        first = watcher.received.wait_for(lambda got: len(got) >= 1)
        start = json.loads(first[0].payload)
        assert {"pen1", "pen2"} == set(start["devices"])
        assert 0 == start["dead_letters"]
        client = mqtt_client_factory(mosquitto)
        client.publish("needlecare/device/pen1/event", b"{not json")
        client.publish(
            "needlecare/device/pen1/event",
            b'{"event_id": "hb-1", "type": "heartbeat", "battery_pct": 77}',
        )

        def latest() -> dict[str, Any]:
            payload: dict[str, Any] = json.loads(watcher.received.messages[-1].payload)
            return payload

        wait_until(
            lambda: (
                latest()["dead_letters"] == 1 and latest()["devices"]["pen1"]["battery_pct"] == 77
            ),
            what=lambda: f"the health topic to show both, last was {latest()}",
        )
        now = latest()
        assert now["latest_dead_letter"]
        assert now["devices"]["pen1"]["last_heartbeat"] is not None
        assert {"last_heartbeat": None, "battery_pct": None} == now["devices"]["pen2"]
        assert now["last_event_at"] is not None
        assert 1 == daemon.count("dead_letters")
