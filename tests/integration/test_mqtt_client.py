"""The MQTT adapter in-process, against a real Mosquitto."""

import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from needlecare.app.inbound import AckToken, Delivery
from needlecare.app.ports import PublishRefusedError
from needlecare.config import MqttConfig
from needlecare.domain.topics import Topics
from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.mqtt import MqttClient, MqttFatalError
from needlecare_integrations.mqtt.paho_private import ReadAhead
from support.clock import FakeClock
from support.daemon import wait_until
from support.mosquitto import MqttClientFactory, MqttConnection

pytestmark = pytest.mark.integration


class TestMqttClient:
    def test_nagle_is_off_and_messages_arrive_unacknowledged_until_acked(
        self, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """TCP_NODELAY is set on the socket; a delivery carries the ack token of its connection."""
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


def _adapter(
    mosquitto: MosquittoBroker,
    client_id: str,
    deliver: Callable[[Delivery], None] = lambda delivery: None,
    **options: int,
) -> MqttClient:
    return MqttClient(
        MqttConfig(host=mosquitto.host, port=mosquitto.port, client_id=client_id),
        topics=Topics(),
        clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)),
        deliver=deliver,
        on_fatal=lambda error: None,
        **options,
    )


class TestAckAll:
    """A batch of PUBACKs written as one packet is what the broker takes it for."""

    @staticmethod
    def _client(mosquitto: MosquittoBroker, inbox: "queue.SimpleQueue[Delivery]") -> MqttClient:
        client = _adapter(mosquitto, "ack-all", inbox.put)
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


class TestWritten:
    def test_a_prompt_published_in_the_block_is_written_when_it_ends(
        self, mosquitto: MosquittoBroker
    ) -> None:
        """written(): on leaving the block our loop has run, and paho holds nothing unwritten
        (the core thread goes on with its turn only once the prompt is on the wire)."""
        client = _adapter(mosquitto, "written")
        client.start()
        try:
            assert client.connected.wait(5)
            unwritten = 0
            for _ in range(50):
                with client.written(within_s=1.0):
                    client.publish("needlecare/mirror/hallway/notify", b"x" * 2000)
                unwritten += client._client.want_write()
        finally:
            client.stop()
        assert 0 == unwritten


class TestHeldBytes:
    """Mosquitto 2.0.11 sends past our receive maximum once acks flow; we stop reading."""

    def test_what_waits_unacknowledged_stays_under_the_bound_and_all_arrives(
        self, mosquitto: MosquittoBroker
    ) -> None:
        """A core that takes what arrived, commits for 5 ms and acks: 10,000 messages of 2 KiB
        (receive maximum 100), never more than 256 KiB held (without the bound: 550 KiB)."""
        limit, count, size = 256 * 1024, 10_000, 2048
        inbox: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        client = _adapter(mosquitto, "held-bytes", inbox.put, max_held_bytes=limit)
        client.start()
        assert client.connected.wait(5)
        # A publisher with a wide window of its own, so that the broker has a backlog for us.
        publisher = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        publisher.max_inflight_messages_set(1000)
        publisher.connect(mosquitto.host, mosquitto.port)
        publisher.loop_start()
        for _ in range(count):
            publisher.publish("needlecare/device/pen1/event", bytes(size), qos=1)
        held, most, mids = 0, 0, []
        try:
            while len(mids) < count:
                batch = [inbox.get(timeout=10)]
                while not inbox.empty():
                    batch.append(inbox.get_nowait())
                held += sum(d.token.size for d in batch)
                most = max(most, held)
                time.sleep(0.005)
                client.ack_all([d.token for d in batch])
                held -= sum(d.token.size for d in batch)
                mids += [d.token.mid for d in batch]
        finally:
            client.stop()
            publisher.loop_stop()
            publisher.disconnect()
        # One loop() of paho may read a few packets past the bound before we look again.
        assert most <= limit + 8 * (size + 1024), f"{most:,} bytes held at once"
        assert count == len(mids)


class TestReadAhead:
    """paho's small reads served from one large read of a real socket."""

    def test_small_reads_come_from_one_large_read_in_order(self) -> None:
        left, right = socket.socketpair()
        with left, right:
            right.setblocking(False)
            reader = ReadAhead(right)
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


class TestAckOnABrokenConnection:
    """The broker-restart stall: a batch of acks written as the connection breaks."""

    def test_acks_meeting_a_dead_connection_neither_hang_nor_stop_the_reconnect(
        self, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        """ack_all() returns although the write fails; the client connects again.

        paho wrote queued packets on the calling thread, and a failed write ran
        on_disconnect there, which waited for the lock ack_all() was holding: the
        caller hung forever, and with it the next CONNACK.
        """
        inbox: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        client = _adapter(mosquitto, "ack-broken", inbox.put)
        client.start()
        publisher = mqtt_client_factory(mosquitto)
        try:
            # Which thread writes first is a race; five breaks make the hang near certain.
            for round_ in range(5):
                assert client.connected.wait(20), f"connected again before round {round_}"
                self._break_while_acking(client, mosquitto, publisher, inbox)
            assert client.connected.wait(20), "connected again"
        finally:
            client.stop(timeout=1.0)

    @staticmethod
    def _break_while_acking(
        client: MqttClient,
        mosquitto: MosquittoBroker,
        publisher: MqttConnection,
        inbox: "queue.SimpleQueue[Delivery]",
    ) -> None:
        tokens: list[AckToken] = []
        while len(tokens) < 5:  # deliveries of this connection (earlier ones come back too)
            publisher.publish("needlecare/device/pen1/event", b"m")
            try:
                token = inbox.get(timeout=0.5).token
            except queue.Empty:
                continue  # subscribed a moment after the CONNACK
            if token.generation == client._generation:
                tokens.append(token)
        sock = client._client.socket()
        pid = mosquitto.pid
        assert sock is not None
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the broker must not close first
        try:
            sock.shutdown(socket.SHUT_WR)  # the next write fails (EPIPE), as after a restart
            acking = threading.Thread(target=client.ack_all, args=(tokens,), daemon=True)
            acking.start()
            acking.join(10)
            assert not acking.is_alive(), "ack_all() hung on the broken connection"
            wait_until(lambda: not client.connected.is_set(), what="the disconnect")
        finally:
            os.kill(pid, signal.SIGCONT)


class TestPublishRefused:
    """paho holds at most 65,535 unacknowledged publishes, one per 16-bit message id."""

    def test_the_publish_past_paho_s_id_space_raises_instead_of_reusing_an_id(
        self, mosquitto: MosquittoBroker
    ) -> None:
        """Broker gone, 65,535 publishes held for the reconnect; the next one is refused.

        Before, the adapter returned the id paho gave the refused message, which
        belongs to a message still waiting: its PUBACK would have confirmed both.
        """
        client = _adapter(mosquitto, "refused")
        client.start()
        try:
            assert client.connected.wait(5)
            mosquitto.stop()
            wait_until(lambda: not client.connected.is_set(), what="the disconnect")
            mids: list[int] = []
            refused: PublishRefusedError | None = None
            while refused is None and len(mids) <= 65535:  # one more than paho has ids for
                try:
                    mids.append(client.publish("needlecare/status/x", b"held"))
                except PublishRefusedError as error:
                    refused = error
            assert refused is not None, "65,536 publishes queued with 65,535 ids"
            assert "65,535" in str(refused)
            # Refused once the ids ran out (the adapter's own "online" may hold one).
            assert len(mids) >= 65534
            assert len(mids) == len(set(mids)), "a message id was handed out twice"
        finally:
            client.stop(timeout=1.0)


class TestConnackTimeout:
    """A broker that accepts the connection but never answers CONNECT."""

    def test_an_unanswered_connect_is_closed_and_tried_again(
        self, mosquitto: MosquittoBroker
    ) -> None:
        """Frozen broker (SIGSTOP): the adapter gives up on the CONNACK and reconnects.

        paho alone waits a whole keepalive (60 s) on such a connection, receiving
        nothing; the wait below ends long before that.
        """
        client = _adapter(mosquitto, "connack")
        client.start()
        try:
            assert client.connected.wait(5)
            mosquitto.stop()
            # Three refused attempts: the next one is 2-4 s away, time enough to
            # start the broker and freeze it before the client comes back.
            wait_until(lambda: client._attempt >= 3, what="three refused reconnects")
            mosquitto.start()
            pid = mosquitto.pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)  # the kernel still accepts connections for it
            try:
                before = _peers_of(mosquitto.port)
                wait_until(
                    lambda: len(_peers_of(mosquitto.port) - before) >= 2,
                    timeout=40,
                    what=lambda: f"a second connection: {_peers_of(mosquitto.port) - before}",
                )
                assert not client.connected.is_set()
            finally:
                os.kill(pid, signal.SIGCONT)
            assert client.connected.wait(20), "connected once the broker answers again"
        finally:
            client.stop(timeout=1.0)


def _peers_of(port: int) -> set[int]:
    """Client ports of the TCP connections made to ``port`` on this host (any state)."""
    peers = set()
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        local, remote = line.split()[1:3]
        if int(local.split(":")[1], 16) == port and remote != "00000000:0000":
            peers.add(int(remote.split(":")[1], 16))
    return peers


def _readable(sock: socket.socket) -> bool:
    import select  # noqa: PLC0415

    return bool(select.select([sock], [], [], 0)[0])
