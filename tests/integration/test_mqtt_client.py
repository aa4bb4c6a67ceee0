"""The MQTT adapter in-process, against a real Mosquitto."""

import queue
import socket

import pytest

from needlecare.app.inbound import Delivery
from needlecare.config import MqttConfig
from needlecare.domain.topics import Topics
from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.mqtt import MqttClient, MqttFatalError
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


class TestAckAll:
    """A batch of PUBACKs written as one packet is what the broker takes it for."""

    @staticmethod
    def _client(mosquitto: MosquittoBroker, inbox: "queue.SimpleQueue[Delivery]") -> MqttClient:
        from datetime import UTC, datetime  # noqa: PLC0415

        client = MqttClient(
            MqttConfig(host=mosquitto.host, port=mosquitto.port, client_id="ack-all"),
            topics=Topics(),
            clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)),
            deliver=inbox.put,
            on_fatal=lambda error: None,
        )
        client.start()
        assert client.connected.wait(5)
        return client

    @staticmethod
    def _take(inbox: "queue.SimpleQueue[Delivery]", count: int) -> list[Delivery]:
        return [inbox.get(timeout=5) for _ in range(count)]

    def test_acked_half_of_a_batch_is_forgotten_the_rest_comes_back(
        self, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        inbox: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        client = self._client(mosquitto, inbox)
        publisher = mqtt_client_factory(mosquitto)
        try:
            for n in range(60):
                publisher.publish("needlecare/device/pen1/event", f"m{n}".encode())
            first = self._take(inbox, 60)
            client.ack_all([d.token for d in first[:30]])
            client.ack(first[30].token)  # a single ack still works beside the batch
        finally:
            client.stop()
        client = self._client(mosquitto, inbox)
        try:
            # Redeliveries come before anything new, so the marker ends the wait.
            publisher.publish("needlecare/device/pen1/event", b"marker")
            again: list[bytes] = []
            while not again or again[-1] != b"marker":
                again.append(inbox.get(timeout=5).message.payload)
        finally:
            client.stop()
        assert [f"m{n}".encode() for n in range(31, 60)] + [b"marker"] == again


class TestReadAhead:
    """paho's small reads served from one large read of a real socket."""

    def test_small_reads_come_from_one_large_read_in_order(self) -> None:
        from needlecare_integrations.mqtt.client import _ReadAhead  # noqa: PLC0415

        left, right = socket.socketpair()
        with left, right:
            right.setblocking(False)
            reader = _ReadAhead(right)
            stream = bytes(range(256)) * 280  # more than one chunk, less than the buffer
            left.sendall(stream)
            wait_until(lambda: reader.pending() > 0 or _readable(right), what="data")
            got = bytearray()
            while len(got) < len(stream):
                try:
                    got += reader.recv(1 if len(got) % 3 else 700)
                except BlockingIOError:
                    continue
            assert stream == bytes(got)
            assert 0 == reader.pending()
            with pytest.raises(BlockingIOError):
                reader.recv(1)  # nothing buffered, nothing on the socket
            left.sendall(b"\x30\x05")
            wait_until(lambda: _readable(right), what="two more bytes")
            assert b"\x30" == reader.recv(1)
            assert 1 == reader.pending()  # paho's loop reads it without select()
            assert b"\x05" == reader.recv(5)
            left.close()
            wait_until(lambda: _readable(right), what="the close")
            assert b"" == reader.recv(1)  # paho's sign that the peer has gone


def _readable(sock: socket.socket) -> bool:
    import select  # noqa: PLC0415

    return bool(select.select([sock], [], [], 0)[0])
