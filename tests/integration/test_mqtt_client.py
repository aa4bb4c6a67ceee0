"""The MQTT adapter in-process, against a real Mosquitto."""

import queue
import socket

import pytest

from needlecare.config import MqttConfig
from needlecare.domain.topics import Topics
from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.mqtt import Delivery, MqttClient, MqttFatalError
from support.clock import FakeClock
from support.daemon import wait_until
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.integration


class TestMqttClient:
    def test_nagle_is_off_and_messages_arrive_unacknowledged_until_acked(
        self, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """TCP_NODELAY is set on the socket; a delivery carries the ack token of its connection."""
        from datetime import UTC, datetime  # noqa: PLC0415

        inbox: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        fatal: list[MqttFatalError] = []
        client = MqttClient(
            MqttConfig(host=mosquitto.host, port=mosquitto.port, client_id="adapter-test"),
            topics=Topics(),
            clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)),
            deliver=inbox.put,
            on_fatal=fatal.append,
        )
        client.start()
        try:
            assert client.connected.wait(5)
            sock = client._client.socket()
            assert 1 == sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            publisher = mqtt_client_factory(mosquitto)
            publisher.publish("needlecare/device/pen1/event", b"{}")
            delivery = inbox.get(timeout=5)
            assert ("needlecare/device/pen1/event", b"{}", 1) == (
                delivery.message.topic,
                delivery.message.payload,
                delivery.token.qos,
            )
            client.ack(delivery.token)
        finally:
            client.stop()
        assert [] == fatal
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe("needlecare/status")
        wait_until(lambda: any(m.payload == b"offline" for m in watcher.received.messages))
