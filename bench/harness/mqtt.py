"""MQTT for the benches: a Mosquitto of their own and paho peers with TCP_NODELAY."""

import json
import shutil
import socket
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.harness.report import BenchError, Stamps, now
from needlecare_integrations.broker import MosquittoBroker

Message = tuple[str, bytes]


class Address(NamedTuple):
    """Where a broker listens; what a child process gets (a broker does not pickle)."""

    host: str
    port: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_broker(data_dir: Any) -> Iterator[MosquittoBroker]:
    """A Mosquitto of our own (``set_tcp_nodelay``, big queues), persistence off."""
    if shutil.which("mosquitto") is None:
        raise BenchError("mosquitto not found on PATH: apt-get install mosquitto")
    broker = MosquittoBroker(data_dir=data_dir, port=free_port(), persistence=False)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def pad_json(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON, padded to ``size`` bytes with a ``note`` field the daemon ignores."""
    overhead = len(json.dumps({**body, "note": ""}, separators=(",", ":")))
    padded = {**body, "note": "x" * (size - overhead)} if size > overhead else body
    return json.dumps(padded, separators=(",", ":")).encode()


class Peer:
    """A paho MQTT 5 client with TCP_NODELAY, its network loop running, PUBACK stamps kept.

    paho never disables Nagle's algorithm; a bench peer must, or it measures 40 ms timers.
    """

    def __init__(
        self,
        broker: MosquittoBroker | Address,
        client_id: str,
        *,
        clean_start: bool = True,
        session_expiry: int | None = None,
        on_message: Callable[[mqtt.MQTTMessage, float], None] | None = None,
        on_puback: Callable[[int, float], None] | None = None,
        max_inflight: int = 20,
    ) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(max_inflight)
        self._broker = (broker.host, broker.port)
        self._clean_start, self._expiry = clean_start, session_expiry
        self._on_message, self._on_puback = on_message, on_puback
        self.stamps = Stamps()  # "connack", ("puback", mid), ("suback", mid)
        self.client.on_connect = lambda client, *_: self._connected(client)
        self.client.on_publish = lambda _c, _u, mid, *_: self._published(mid)
        self.client.on_subscribe = lambda _c, _u, mid, *_: self.stamps.add(("suback", mid))
        self.client.on_message = lambda _c, _u, message: self._message(message)

    def __enter__(self) -> Self:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self._expiry is not None:
            properties.SessionExpiryInterval = self._expiry
        self.client.connect(*self._broker, clean_start=self._clean_start, properties=properties)
        self.client.loop_start()
        try:
            self.connected_at = self.stamps.need("connack", f"CONNACK from {self._broker}", 10)
        except BenchError:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, *topics: str) -> Self:
        for topic in topics:
            _, mid = self.client.subscribe(topic, 1)
            self.stamps.need(("suback", mid), f"SUBACK for {topic}", 10)
        return self

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Queue a publish; its message id. Past 65,535 unacknowledged paho refuses it."""
        info = self.client.publish(topic, payload, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BenchError(f"paho refused a publish to {topic}: {mqtt.error_string(info.rc)}")
        return int(info.mid)

    def acked_at(self, mid: int, timeout: float = 10.0) -> float:
        """Wait for the PUBACK of ``mid``; the stamp it arrived at."""
        return self.stamps.take(("puback", mid), f"PUBACK for message {mid}", timeout)

    def send(self, messages: list[Message], window: int = 100, timeout: float = 120) -> int:
        """Publish with QoS 1, ``window`` at a time, each acknowledged; the payload bytes."""
        for first in range(0, len(messages), window):
            part = messages[first : first + window]
            for mid in [self.publish(topic, payload) for topic, payload in part]:
                self.acked_at(mid, timeout)
        return sum(len(payload) for _, payload in messages)

    def _connected(self, client: mqtt.Client) -> None:
        sock = client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stamps.add("connack")

    def _published(self, mid: int) -> None:
        if self._on_puback is not None:
            self._on_puback(mid, now())
        else:
            self.stamps.add(("puback", mid))

    def _message(self, message: mqtt.MQTTMessage) -> None:
        if self._on_message is not None:
            try:
                self._on_message(message, now())
            except Exception:  # never raise into paho's network thread
                traceback.print_exc()
