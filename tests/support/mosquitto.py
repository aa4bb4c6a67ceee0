"""Fixtures for a real Mosquitto per test and paho-mqtt 2 clients connected to it."""

import random
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from needlecare_integrations.broker import BrokerTls, MosquittoBroker
from support.certs import Certs

TIMEOUT = 5.0
USERNAME = "needlecare"
PASSWORD = "s3cret-pass"
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT = 20000


# --- ports -------------------------------------------------------------------------


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Distinct free ports on 127.0.0.1, chosen below the kernel's ephemeral range.

    Clients reconnecting to a stopped broker get ephemeral local ports; one of them
    can land on the broker's port (TCP self-connect) and keep it from restarting.
    Ports below that range cannot be taken that way.
    """
    low = _ephemeral_low()
    if low - _LOWEST_PORT < 1000:
        return _kernel_ports(count)
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(_LOWEST_PORT, low)
        if port not in ports and _bindable(port):
            ports.append(port)
    return ports


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))  # all bound at once, so all distinct
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- brokers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthBroker:
    """A broker that refuses anonymous clients, and the one account it accepts."""

    broker: MosquittoBroker
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What a client presents over TLS: the CA it trusts, and maybe its certificate."""

    ca_cert: Path
    client_cert: Path | None = None
    client_key: Path | None = None


@dataclass(frozen=True, slots=True)
class TlsBroker:
    """A broker with a plain listener and a TLS one that requires a client certificate."""

    broker: MosquittoBroker
    certs: Certs
    tls_port: int

    def client_tls(self, *, with_certificate: bool = True) -> ClientTls:
        """Client settings trusting the test CA, with or without the client certificate."""
        if not with_certificate:
            return ClientTls(self.certs.ca_cert)
        return ClientTls(self.certs.ca_cert, self.certs.client_cert, self.certs.client_key)


def require_program(program: str, package: str) -> None:
    """Fail (never skip: a skipped integration test hides a broken setup) if missing."""
    if shutil.which(program) is None:
        pytest.fail(
            f"{program} not found on PATH; the integration tests need it: "
            f"apt-get install {package}",
            pytrace=False,
        )


def running_broker(
    data_dir: Path,
    *,
    port: int,
    password_file: Path | None = None,
    tls: BrokerTls | None = None,
) -> Iterator[MosquittoBroker]:
    """Start a broker, yield it, then stop it (killing it if SIGTERM hangs)."""
    require_program("mosquitto", "mosquitto")
    broker = MosquittoBroker(data_dir=data_dir, port=port, password_file=password_file, tls=tls)
    broker.start()
    try:
        yield broker
    finally:
        print(f"{broker!r} log:\n{broker.log_tail(40)}")  # shown when the test fails
        broker.close()


def make_password_file(path: Path, username: str, password: str) -> Path:
    """Write a Mosquitto password file holding one account."""
    require_program("mosquitto_passwd", "mosquitto")
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(path), username, password],
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A running anonymous broker with persistence, on a free port, for one test."""
    yield from running_broker(tmp_path / "broker", port=free_port())


@pytest.fixture
def mosquitto_auth(tmp_path: Path) -> Iterator[AuthBroker]:
    """A running broker that accepts only user ``needlecare`` / ``s3cret-pass``."""
    password_file = make_password_file(tmp_path / "passwd", USERNAME, PASSWORD)
    data_dir = tmp_path / "broker"
    for broker in running_broker(data_dir, port=free_port(), password_file=password_file):
        yield AuthBroker(broker, USERNAME, PASSWORD)


@pytest.fixture
def mosquitto_tls(tmp_path: Path, tls_certs: Certs) -> Iterator[TlsBroker]:
    """A running broker with a plain listener and a client-certificate TLS listener."""
    port, tls_port = free_ports(2)
    tls = BrokerTls(
        ca_file=tls_certs.ca_cert,
        cert_file=tls_certs.server_cert,
        key_file=tls_certs.server_key,
        port=tls_port,
        require_certificate=True,
    )
    for broker in running_broker(tmp_path / "broker", port=port, tls=tls):
        yield TlsBroker(broker, tls_certs, tls_port)


# --- clients -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """One message as delivered to a client."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class Recorder:
    """Collects the messages a client receives, for threads that wait on them."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._messages: list[Received] = []

    def on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        """paho's on_message callback (runs on paho's network thread)."""
        received = Received(
            message.topic, bytes(message.payload), message.qos, bool(message.retain)
        )
        with self._condition:
            self._messages.append(received)
            self._condition.notify_all()

    @property
    def messages(self) -> list[Received]:
        """A copy of everything received so far, in arrival order."""
        with self._condition:
            return list(self._messages)

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = TIMEOUT
    ) -> list[Received]:
        """Block until predicate(messages) holds; fail the test after timeout seconds."""
        with self._condition:
            if not self._condition.wait_for(lambda: predicate(self._messages), timeout):
                pytest.fail(f"timed out after {timeout} s; received {self._messages}")
            return list(self._messages)

    def wait_for_count(self, count: int, timeout: float = TIMEOUT) -> list[Received]:
        """Block until at least count messages have arrived."""
        return self.wait_for(lambda messages: len(messages) >= count, timeout)


class MqttConnection:
    """A paho client with its network loop running, its first CONNACK and its messages."""

    def __init__(self, client: mqtt.Client, received: Recorder) -> None:
        self.client = client
        self.received = received
        self._condition = threading.Condition()
        self._outcome: str | None = None
        self._session_present = False
        self._subacks: dict[int, list[ReasonCode]] = {}
        client.on_message = received.on_message
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe

    @property
    def outcome(self) -> str:
        """The first CONNACK's reason ("Success", "Not authorized", ...), or why none came."""
        with self._condition:
            return self._outcome or "pending"

    @property
    def session_present(self) -> bool:
        """The first CONNACK's session-present flag."""
        return self._session_present

    def wait_for_outcome(self, timeout: float = TIMEOUT) -> str:
        """Block until a CONNACK arrives or the connection closes without one."""
        with self._condition:
            self._condition.wait_for(lambda: self._outcome is not None, timeout)
        return self.outcome

    def subscribe(self, topic_filter: str, qos: int = 1, timeout: float = TIMEOUT) -> None:
        """Subscribe and wait for the SUBACK granting qos."""
        result, mid = self.client.subscribe(topic_filter, qos)
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            pytest.fail(f"subscribing to {topic_filter!r}: {mqtt.error_string(result)}")
        with self._condition:
            if not self._condition.wait_for(lambda: mid in self._subacks, timeout):
                pytest.fail(f"no SUBACK for {topic_filter!r} within {timeout} s")
            granted = self._subacks.pop(mid)
        if [qos] != [code.value for code in granted]:
            pytest.fail(f"subscribing to {topic_filter!r} with QoS {qos} gave {granted}")

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish and, for QoS > 0, wait until the broker acknowledged it."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(TIMEOUT)
        if not info.is_published():
            pytest.fail(f"publishing to {topic!r}: no acknowledgement within {TIMEOUT} s")

    def connect(self, host: str, port: int, clean_start: bool, session_expiry: int | None) -> None:
        """Connect and start the network thread; the outcome arrives later.

        clean_start=True starts clean on the first connection only, as paho does by
        default, so that paho's automatic reconnects resume the session.
        """
        v5 = self.client.protocol == mqtt.MQTTv5
        properties = Properties(PacketTypes.CONNECT) if v5 else None  # type: ignore[no-untyped-call]
        if properties is not None and session_expiry is not None:
            properties.SessionExpiryInterval = session_expiry
        first_only = mqtt.MQTT_CLEAN_START_FIRST_ONLY
        try:
            self.client.connect(
                host,
                port,
                clean_start=first_only if clean_start or not v5 else False,
                properties=properties,
            )
        except OSError as error:  # refused, or a TLS handshake the server rejected
            self._settle(f"connection failed: {error}")
            return
        self.client.loop_start()

    def close(self) -> None:
        """Disconnect and stop the network thread; safe to call twice."""
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        sock = client.socket()
        if isinstance(sock, socket.socket):  # paho never disables Nagle itself
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._condition:
            if self._outcome is None:
                self._outcome = str(reason)
                self._session_present = flags.session_present
            self._condition.notify_all()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._settle(f"disconnected before CONNACK: {reason}")

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        self._settle("connection failed")

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        with self._condition:
            self._subacks[mid] = reasons
            self._condition.notify_all()

    def _settle(self, outcome: str) -> None:
        with self._condition:
            if self._outcome is None:
                self._outcome = outcome
            self._condition.notify_all()


class MqttClientFactory:
    """Creates connected paho-mqtt 2 clients and closes them all at teardown."""

    def __init__(self) -> None:
        self._connections: list[MqttConnection] = []

    def __call__(
        self,
        broker: MosquittoBroker,
        *,
        port: int | None = None,
        client_id: str | None = None,
        protocol: MQTTProtocolVersion = mqtt.MQTTv5,
        clean_start: bool = True,
        session_expiry: int | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: ClientTls | None = None,
        check: bool = True,
    ) -> MqttConnection:
        """Connect to broker (or its port) and wait for the CONNACK.

        With check, anything but a successful CONNACK fails the test; without, the
        outcome is on the returned connection, whose client is already stopped.
        """
        client = _paho_client(
            client_id=client_id,
            protocol=protocol,
            clean_start=clean_start,
            username=username,
            password=password,
            tls=tls,
        )
        connection = MqttConnection(client, Recorder())
        self._connections.append(connection)
        connection.connect(broker.host, port or broker.port, clean_start, session_expiry)
        outcome = connection.wait_for_outcome()
        if outcome != "Success":
            connection.close()
            if check:
                pytest.fail(f"connecting to {broker!r} gave {outcome!r}")
        return connection

    def close_all(self) -> None:
        """Disconnect every client created, newest first."""
        for connection in reversed(self._connections):
            connection.close()


def _paho_client(
    *,
    client_id: str | None,
    protocol: MQTTProtocolVersion,
    clean_start: bool,
    username: str | None,
    password: str | None,
    tls: ClientTls | None,
) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or unique_client_id(),
        protocol=protocol,
        clean_session=None if protocol == mqtt.MQTTv5 else clean_start,
    )
    """A paho-mqtt 2 client (callback API version 2) configured but not connected."""
    # Brokers restart in milliseconds; paho annotates int, but any number works.
    client.reconnect_delay_set(min_delay=0.1, max_delay=1)  # type: ignore[arg-type]
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set(
            ca_certs=str(tls.ca_cert),
            certfile=None if tls.client_cert is None else str(tls.client_cert),
            keyfile=None if tls.client_key is None else str(tls.client_key),
        )
    return client


@pytest.fixture
def mqtt_client_factory() -> Iterator[MqttClientFactory]:
    """Call with a broker (and options) for a connected client; all closed at teardown."""
    factory = MqttClientFactory()
    yield factory
    factory.close_all()


def unique_topic(prefix: str = "test") -> str:
    """A topic no other test uses."""
    return f"{prefix}/{uuid.uuid4().hex}"


def unique_client_id(prefix: str = "test") -> str:
    """A client id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
