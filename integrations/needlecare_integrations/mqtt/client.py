"""The daemon's MQTT connection.

paho runs its network loop on a thread of ours, which reconnects with jittered
backoff, resubscribes on every CONNACK and gives up only on authentication
errors. Inbound messages are handed over as ``Delivery`` objects and acknowledged
later, only once the caller has committed them (paho's ``manual_ack``).
"""

import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from needlecare.app.inbound import AckToken, Delivery, InboundMessage
from needlecare.app.ports import PublishRefusedError
from needlecare.clock import Clock
from needlecare.config import MqttConfig
from needlecare.domain.topics import Topics
from needlecare.logs import get_logger
from needlecare_integrations.backoff import backoff_delay
from needlecare_integrations.mqtt import paho_private
from needlecare_integrations.mqtt.credentials import apply_credentials

log = get_logger(__name__)

# CONNACK reason codes that retrying cannot fix: bad client id, bad user name or
# password, not authorised, banned, bad authentication method.
_FATAL_CONNACK = {133, 134, 135, 138, 140}
_RECOVERABLE_TLS = (ssl.SSLEOFError, ssl.SSLZeroReturnError)
# Two daemons sharing one client id take the session from each other forever.
# MQTT 5 brokers say so with DISCONNECT reason 0x8E "Session taken over", but
# Mosquitto 2.0.11 closes the old connection before that packet leaves, so a
# connection closed cleanly by the broker shortly after it accepted us, twice in
# a row with a successful reconnect in between, counts as a takeover too (a
# broker restart refuses the reconnect, or leaves the connection up for longer).
# Each takeover waits longer (2-4 s, doubling, then 1-2 min): the pair connects a
# few times a minute at most. The count starts again after a long calm spell.
_SESSION_TAKEN_OVER = 0x8E
_CONNECTION_LOST = 0x80  # paho's reason when the socket closed without a DISCONNECT
_QUICK_DROP_S = 30.0
_TAKEOVER_BASE_S = 4.0
_TAKEOVER_CAP_S = 120.0
_TAKEOVER_FORGET_S = 600.0
# How long a CONNECT may go unanswered before we close and try again (see _pump).
_CONNACK_TIMEOUT_S = 10.0
# Received and not yet acknowledged, at most, before we stop reading (_pause_reading):
# Mosquitto 2.0.11 sends past our receive maximum once acks flow (27,000 messages,
# 160 MiB, held during a flood of 64 KiB payloads). Each message counts its payload
# and about what its Python objects take.
_MAX_HELD_BYTES = 8 * 2**20
_HELD_OVERHEAD = 512


class _SocketErrors(logging.Handler):
    """Keeps paho's last socket error, which its callbacks never pass on.

    A TLS 1.3 server rejects a client certificate only after the handshake, as
    an alert on the first read; paho logs it and reports a plain disconnect.
    Through a WARNING-level logger this costs nothing on the hot path.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()

    def take(self) -> str | None:
        last, self.last = self.last, None
        return last


def _rejected_certificate(error: str | None) -> bool:
    text = (error or "").upper()
    return "ALERT" in text and "CERTIFICATE" in text


class MqttFatalError(RuntimeError):
    """The broker refuses us for a reason that retrying cannot fix."""


class MqttClient:
    """One persistent MQTT 5 session to the broker."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        topics: Topics,
        clock: Clock,
        deliver: Callable[[Delivery], None],
        on_fatal: Callable[[MqttFatalError], None],
        on_connected: Callable[[], None] = lambda: None,
        on_published: Callable[[int], None] = lambda mid: None,
        max_held_bytes: int = _MAX_HELD_BYTES,
    ) -> None:
        self._config = config
        self._topics = topics
        self._clock = clock
        self._deliver = deliver
        self._on_fatal = on_fatal
        self._on_connected = on_connected
        self._on_published = on_published
        self._stopping = threading.Event()
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0
        # Bytes handed over on this connection and not acknowledged yet (under _lock).
        self._held = 0
        self._max_held = max_held_bytes
        self._stir = threading.Event()  # an ack or a write for a paused reader (_pause_reading)
        self._looped = threading.Event()  # set after each round of paho's loop (written())
        self._attempt = 0
        self._takeovers = 0
        self._taken_over: str | None = None  # why the last connection counts as taken over
        self._last_takeover = 0.0  # time.monotonic() of the latest takeover
        self._connected_at: float | None = None
        self._quick_drops = 0
        self._fatal: MqttFatalError | None = None
        self._thread: threading.Thread | None = None
        self._rand = random.Random()  # noqa: S311 - jitter, not security
        self._socket_errors = _SocketErrors()
        self._client = self._build_client()

    def _build_client(self) -> paho.Client:
        cfg = self._config
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        apply_credentials(client, cfg)
        client.will_set(self._topics.status, b"offline", qos=1, retain=True)
        paho_log = logging.getLogger("needlecare.paho")
        paho_log.setLevel(logging.WARNING)
        paho_log.propagate = False
        paho_log.handlers = [self._socket_errors]
        client.enable_logger(paho_log)
        client.on_socket_open = self._on_socket_open
        # With a callback here, paho never writes on the thread that queues a
        # packet: publish() and ack() from the core thread only queue it and wake
        # our loop, which writes. Without it, paho wrote on the core thread, and a
        # write that found the connection gone ran on_disconnect there, inside
        # ack_all() holding self._lock, which on_disconnect takes too: the core
        # thread hung for good, and the next CONNACK hung the MQTT thread behind
        # it (the broker-restart stall, docs/RELIABILITY.md).
        client.on_socket_register_write = self._write_wanted
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        gone = paho_private.missing(client)
        if gone:
            log.warning("paho_private_api_missing", missing=gone, paho=paho_version())
        return client

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; returns at once."""
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Say ``offline`` (retained), disconnect cleanly and join the thread."""
        self._stopping.set()
        if self.connected.is_set():
            info = self._client.publish(self._topics.status, b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=min(timeout, 2.0))
            except (RuntimeError, ValueError) as error:
                log.warning("status_offline_unsent", error=str(error))
        self._client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        first = True
        while not self._stopping.is_set():
            try:
                self._connect(first=first)
                first = False
                self._pump()
            except MqttFatalError as error:
                self._fatal = error
            except _RECOVERABLE_TLS as error:
                log.warning("mqtt_connect_failed", error=str(error), attempt=self._attempt)
            except ssl.SSLError as error:
                self._fatal = MqttFatalError(f"TLS handshake with the broker failed: {error}")
            except OSError as error:
                self._quick_drops = 0  # the broker was away: not a takeover
                log.warning("mqtt_connect_failed", error=str(error), attempt=self._attempt)
            if self._fatal is not None:
                log.error("mqtt_gave_up", error=str(self._fatal))
                self._on_fatal(self._fatal)
                return
            self._wait_before_retry()

    def _connect(self, *, first: bool) -> None:
        cfg = self._config
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = cfg.session_expiry_s
        props.ReceiveMaximum = cfg.receive_maximum
        if first:
            self._client.connect(
                cfg.host, cfg.port, cfg.keepalive_s, clean_start=False, properties=props
            )
        else:
            self._client.reconnect()

    def _pump(self) -> None:
        # The select timeout only bounds housekeeping: publishes from other
        # threads and disconnect() wake paho's loop at once. The loop runs on
        # while stopping, to carry the final "offline" until disconnect().
        timeout = max(1.0, self._config.keepalive_s / 4)
        connack_by = time.monotonic() + self._connack_wait_s
        while self._fatal is None:
            waiting = not self.connected.is_set() and not self._stopping.is_set()
            if waiting and time.monotonic() >= connack_by:
                self._give_up_on_connack()
                connack_by = float("inf")  # once: the DISCONNECT is on its way
            if self._held_over():
                if not self._pause_reading():
                    return
                continue
            if self._client.loop(timeout=1.0 if waiting else timeout) != paho.MQTT_ERR_SUCCESS:
                return
            self._looped.set()

    def _pause_reading(self) -> bool:
        """Write and ping, but read nothing, until acks bring what we hold under the bound.

        The broker keeps what we do not read (TCP pushes back), as it keeps what it may
        not send us yet. Reading stays paused while the core is stuck (a store that
        cannot be written): after a keepalive without the broker's ping answer, paho
        drops the connection, and the reconnect starts the count again. False when a
        write or paho's housekeeping failed: the connection is gone.
        """
        log.debug("mqtt_reading_paused", held_bytes=self._held)
        while self._held_over() and not self._stopping.is_set():
            self._stir.wait(0.05)
            self._stir.clear()
            if self._client.want_write() and self._client.loop_write() != paho.MQTT_ERR_SUCCESS:
                return False
            self._looped.set()
            if self._client.loop_misc() != paho.MQTT_ERR_SUCCESS:
                return False
        return True

    def _held_over(self) -> bool:
        with self._lock:
            return self._held > self._max_held

    def _release(self, size: int) -> None:
        """Acknowledged (under _lock): that much less held; a paused reader looks again."""
        self._held -= size
        if size:
            self._stir.set()

    def _next_generation(self) -> None:
        """A new connection: the old one's messages come again, and nothing is held on it."""
        with self._lock:
            self._generation += 1
            self._held = 0
        self._stir.set()

    def _write_wanted(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        """paho queued a packet: our loop's select() is woken by paho itself, a paused
        reader by this."""
        self._stir.set()

    @property
    def _connack_wait_s(self) -> float:
        return min(_CONNACK_TIMEOUT_S, float(self._config.keepalive_s))

    def _give_up_on_connack(self) -> None:
        """Close a connection whose CONNECT the broker has not answered.

        paho itself waits a whole keepalive (60 s by default) for the CONNACK,
        receiving nothing meanwhile, when a broker accepts the TCP connection and
        then does not answer (hung, overloaded, or a proxy in front of a broker
        that is restarting).
        """
        log.warning("mqtt_connack_timeout", waited_s=self._connack_wait_s, attempt=self._attempt)
        self._client.disconnect()

    def _wait_before_retry(self) -> None:
        if self._stopping.is_set():
            return
        if self._taken_over is not None:
            why, self._taken_over = self._taken_over, None
            delay = backoff_delay(
                self._takeovers - 1,
                rand=self._rand.random,
                base=_TAKEOVER_BASE_S,
                cap=_TAKEOVER_CAP_S,
            )
            log.error(
                "mqtt_session_taken_over",
                client_id=self._config.client_id,
                takeovers=self._takeovers,
                delay_s=round(delay, 2),
                reason=why,
                error="another client connected with the same mqtt.client_id and took our"
                " session; give every daemon its own client id",
            )
        else:
            delay = backoff_delay(self._attempt, rand=self._rand.random)
            self._attempt += 1
        log.info("mqtt_reconnect_scheduled", delay_s=round(delay, 2), attempt=self._attempt)
        self._stopping.wait(delay)

    def _check_takeover(self, reason: ReasonCode, socket_error: str | None) -> None:
        """Note whether the connection just lost was taken by a client with our id."""
        now = time.monotonic()
        lasted = None if self._connected_at is None else now - self._connected_at
        self._connected_at = None
        code = getattr(reason, "value", None)
        quick = lasted is not None and lasted < _QUICK_DROP_S
        if code == _CONNECTION_LOST and socket_error is None and quick:
            self._quick_drops += 1
        elif code != _SESSION_TAKEN_OVER:
            self._quick_drops = 0
        if code == _SESSION_TAKEN_OVER:
            why = "the broker said the session was taken over"
        elif self._quick_drops >= 2:
            why = (
                f"the broker closed the connection {lasted:.1f} s after accepting it,"
                f" {self._quick_drops} times in a row"
            )
        else:
            return
        if now - self._last_takeover > _TAKEOVER_FORGET_S:
            self._takeovers = 0
        self._takeovers += 1
        self._last_takeover = now
        self._taken_over = why

    # -- paho callbacks (network thread: never raise, never block) -------------

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        try:
            # Nagle's algorithm adds ~40-90 ms to every small publish on loopback.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError) as error:
            log.warning("tcp_nodelay_unset", error=str(error))
        paho_private.install_read_ahead(client, sock)

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        try:
            self._handle_connack(reason, session_present=bool(flags.session_present))
        except Exception as error:
            log.exception("mqtt_callback_failed", callback="on_connect", error=str(error))

    def _handle_connack(self, reason: ReasonCode, *, session_present: bool) -> None:
        if reason.is_failure:
            if reason.value in _FATAL_CONNACK:
                self._fatal = MqttFatalError(f"the broker refused the connection: {reason}")
            else:
                log.warning("mqtt_refused", reason=str(reason))
            return
        self._next_generation()
        self._attempt = 0
        self._connected_at = time.monotonic()
        self._client.subscribe([(topic, 1) for topic in self._topics.subscriptions])
        self._client.publish(self._topics.status, b"online", qos=1, retain=True)
        self.connected.set()
        self._on_connected()
        log.info(
            "mqtt_connected",
            host=self._config.host,
            port=self._config.port,
            session_present=session_present,
        )

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        # Acks for messages of the old connection must not reach the new one:
        # the broker redelivers them and their message ids mean nothing now.
        self._next_generation()
        socket_error = self._socket_errors.take()
        if not self.connected.is_set() and _rejected_certificate(socket_error):
            self._fatal = MqttFatalError(
                f"the broker rejected our TLS client certificate: {socket_error}"
            )
        if self.connected.is_set():
            self._check_takeover(reason, socket_error)
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("mqtt_disconnected", reason=str(reason), error=socket_error)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            message = InboundMessage(
                topic=_topic_text(msg),
                payload=bytes(msg.payload),
                received_at=self._clock.now(),
                redelivered=bool(msg.dup),
            )
            size = len(message.payload) + _HELD_OVERHEAD
            with self._lock:
                self._held += size
                token = AckToken(self._generation, msg.mid, msg.qos, size)
            self._deliver(Delivery(message, token))
        except Exception as error:
            log.exception("mqtt_callback_failed", callback="on_message", error=str(error))

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        try:
            self._on_published(mid)
        except Exception as error:
            log.exception("mqtt_callback_failed", callback="on_publish", error=str(error))

    # -- used by the daemon's core thread ---------------------------------------

    def ack(self, token: AckToken) -> None:
        """Acknowledge a committed message, unless its connection is gone."""
        with self._lock:
            if token.generation != self._generation:
                return
            self._release(token.size)
            if token.qos > 0:
                self._client.ack(token.mid, token.qos)

    def ack_all(self, tokens: Sequence[AckToken]) -> None:
        """Acknowledge a committed batch with one socket write instead of one per message.

        paho writes each PUBACK with a system call of its own and wakes its
        network thread for each (a quarter of the core thread's time in a
        drain); ``paho_private.queue_pubacks`` writes the QoS 1 ones at once.
        """
        with self._lock:
            current = [t for t in tokens if t.generation == self._generation]
            self._release(sum(t.size for t in current))
            current = [t for t in current if t.qos > 0]
            mids = [t.mid for t in current if t.qos == 1]
            if len(mids) > 1 and paho_private.queue_pubacks(self._client, mids):
                current = [t for t in current if t.qos == 2]
            for token in current:
                self._client.ack(token.mid, token.qos)

    @contextmanager
    def written(self, within_s: float) -> Iterator[None]:
        """Publish in the block; leaving it waits (at most ``within_s``) until paho has
        nothing left to write.

        paho writes on our thread, which needs the GIL to. A thread that only queues
        a prompt and goes on with its work (acks, retained state) kept it waiting for
        that work; waiting here gives it the GIL, and the prompt goes out first.
        """
        yield
        deadline = time.monotonic() + within_s
        while self._client.want_write():
            self._looped.clear()
            if not self._client.want_write():  # written between the check and the clear
                return
            left = deadline - time.monotonic()
            if left <= 0 or not self._looped.wait(left):
                return

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Queue a publish and return its message id; ``on_published`` gets it on PUBACK.

        paho keeps unacknowledged QoS 1 messages, also those published while
        disconnected, and resends them after a reconnect. It keeps them by their
        16-bit message id, so it can hold at most 65,535: past that it refuses
        the message and returns an id that belongs to another one still waiting
        (paho issue #377). That raises ``PublishRefusedError`` here, instead of
        letting the other message's PUBACK confirm this one.
        """
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise PublishRefusedError(
                f"paho holds 65,535 unacknowledged messages; {topic} not queued"
            )
        return int(info.mid)


def paho_version() -> str:
    """The installed paho-mqtt version, for log lines about its internals."""
    from importlib.metadata import version  # noqa: PLC0415 - only on a warning

    return version("paho-mqtt")


def _topic_text(msg: paho.MQTTMessage) -> str:
    try:
        return str(msg.topic)
    except UnicodeDecodeError:
        return bytes(msg._topic).decode("utf-8", errors="backslashreplace")
