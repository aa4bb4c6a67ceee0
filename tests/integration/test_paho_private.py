"""paho's private state that the MQTT adapter relies on, checked against a real Mosquitto.

``needlecare_integrations.mqtt.paho_private`` is the only place that touches it;
when an upgrade of paho moves it, these tests fail by name instead of the adapter
quietly falling back to the slower public API.
"""

import queue
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.mqtt import paho_private
from support.mosquitto import MqttClientFactory, unique_client_id, unique_topic

pytestmark = pytest.mark.integration


class _Subscriber:
    """A paho client with manual acks and a persistent session, on its own loop thread."""

    def __init__(self, broker: MosquittoBroker, client_id: str, topic: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.installed: list[bool] = []
        self.messages: queue.SimpleQueue[mqtt.MQTTMessage] = queue.SimpleQueue()
        self.subscribed = threading.Event()
        self.client.on_socket_open = self._opened
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_connect = lambda *_: self.client.subscribe(topic, 1)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 300
        self.client.connect(broker.host, broker.port, clean_start=False, properties=properties)
        self.client.loop_start()
        assert self.subscribed.wait(5), "no SUBACK"

    def _opened(self, client: mqtt.Client, _userdata: object, sock: object) -> None:
        self.installed.append(paho_private.install_read_ahead(client, sock))

    def take(self, count: int) -> list[mqtt.MQTTMessage]:
        return [self.messages.get(timeout=5) for _ in range(count)]

    def sync(self) -> None:
        """Wait until the broker has read everything queued so far (it answers in order)."""
        self.client.publish(unique_topic("sync"), b"", qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class TestPahoPrivate:
    def test_this_paho_has_every_private_name_the_adapter_uses(self) -> None:
        """``Client._sock`` and ``Client._packet_queue(command, packet, mid, qos, ...)`` exist."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        assert [] == paho_private.missing(client)

    def test_paho_reads_a_real_connection_through_the_read_ahead(
        self, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """on_socket_open sees the socket paho reads; swapped, every message still arrives."""
        topic = unique_topic("read-ahead")
        subscriber = _Subscriber(mosquitto, unique_client_id("read-ahead"), topic)
        try:
            assert [True] == subscriber.installed
            assert isinstance(subscriber.client._sock, paho_private.ReadAhead)
            publisher = mqtt_client_factory(mosquitto)
            payloads = [f"m{n}".encode() * 100 for n in range(300)]  # > one 64 KiB chunk
            for payload in payloads:
                publisher.publish(topic, payload, qos=1)
            assert payloads == [m.payload for m in subscriber.take(len(payloads))]
        finally:
            subscriber.close()

    def test_pubacks_queued_as_one_write_are_taken_by_the_broker(
        self, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """Acked in one buffer, 40 messages are forgotten; the 10 not acked come back."""
        topic, client_id = unique_topic("pubacks"), unique_client_id("pubacks")
        publisher = mqtt_client_factory(mosquitto)
        subscriber = _Subscriber(mosquitto, client_id, topic)
        try:
            for n in range(50):
                publisher.publish(topic, f"m{n}".encode(), qos=1)
            received = subscriber.take(50)
            assert paho_private.queue_pubacks(subscriber.client, [m.mid for m in received[:40]])
            subscriber.sync()  # disconnect() right away can beat the queued bytes out
        finally:
            subscriber.close()
        subscriber = _Subscriber(mosquitto, client_id, topic)
        try:
            publisher.publish(topic, b"marker", qos=1)  # redeliveries come first
            again: list[bytes] = []
            while not again or again[-1] != b"marker":
                again.append(subscriber.messages.get(timeout=5).payload)
        finally:
            subscriber.close()
        assert [f"m{n}".encode() for n in range(40, 50)] + [b"marker"] == again
