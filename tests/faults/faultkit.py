"""Shared pieces of the fault suite: a pipelined QoS 1 publisher, RSS sampling, figures.

tests/faults is put on sys.path by pytest (rootdir-relative "prepend" imports), so
the fault modules import this as ``faultkit``.
"""

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from needlecare.domain.protocol import build_protocols
from needlecare_integrations.broker import MosquittoBroker

FIGURES_ENV = "NEEDLECARE_FAULT_FIGURES"  # append each test's figures (JSON lines) here
WAIT = 30.0


def report(test: str, **figures: Any) -> None:
    """Print a test's figures for docs/RELIABILITY.md (and append them to $FIGURES_ENV)."""
    line = json.dumps({"test": test, **figures}, sort_keys=True)
    print(f"FAULT-FIGURES {line}")
    target = os.environ.get(FIGURES_ENV)
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(line + "\n")


# Every session_started looks up the profile's last treated session with a query that
# sorts the profile's whole history (docs/RELIABILITY.md, "findings"). Spreading the
# sessions of the bulk tests over 20 profiles keeps them about faults, not history size.
PROFILES = tuple(f"p{n:02d}" for n in range(20))
# No reminders or guards: the bulk tests are about ingest, one session per event.
PROTOCOL_OFF = {"steps": {name: {"enabled": False} for name in build_protocols(None)["home"].steps}}


def ingest_config() -> dict[str, Any]:
    """daemon_factory keywords for the bulk ingest tests (INFO logs: less to write)."""
    return {
        "profiles": {name: {"timezone": "Europe/Berlin"} for name in PROFILES},
        "protocol": PROTOCOL_OFF,
        "logging": {"level": "INFO", "format": "json"},
    }


def session_starts(count: int, prefix: str, first: int = 0) -> list[tuple[str, bytes, str]]:
    """(topic, payload, event id) of session_started events alternating pen1 and pen2.

    Each one closes the device's open session and opens a new one: ``count`` events
    make ``count`` sessions, two of them open at the end.
    """
    messages = []
    for n in range(first, first + count):
        event_id = f"{prefix}-{n:05d}"
        body = {
            "event_id": event_id,
            "type": "session_started",
            "profile": PROFILES[(n // 2) % len(PROFILES)],
        }
        messages.append(
            (f"needlecare/device/pen{1 + n % 2}/event", json.dumps(body).encode(), event_id)
        )
    return messages


def event_ids_in(db_read: Callable[[Callable[[Any], Any]], Any]) -> list[str]:
    """Every event id in a daemon's store, in commit order (``DaemonProcess.read``)."""
    ids: list[str] = db_read(lambda store: [e.event_id for e in store.iter_events()])
    return ids


class Publisher:
    """A paho client that publishes QoS 1 from one thread with many messages in flight.

    Each message is published under a key (its event id); ``acked()`` lists the keys
    the broker has acknowledged. paho keeps unacknowledged QoS 1 messages, also those
    published while disconnected, and sends them again after its automatic reconnect.
    Publish from one thread only (paho can deadlock when several publish at once).
    """

    def __init__(
        self,
        broker: MosquittoBroker,
        *,
        window: int = 400,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.window = window
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fault-pub-{uuid.uuid4().hex[:10]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(min_delay=0.1, max_delay=1)  # type: ignore[arg-type]
        self._client.max_inflight_messages_set(window)
        self._client.max_queued_messages_set(0)  # unlimited: nothing is dropped by paho
        self._cond = threading.Condition()
        self._published = 0
        self._confirmed = 0
        self.connects = 0
        self._keys: list[str] = []  # every key, in publishing order
        self._pending: dict[int, str] = {}  # message id -> key, until the PUBACK
        self._early: set[int] = set()  # PUBACKs that beat publish() returning
        self._acked: set[str] = set()
        self._client.on_publish = self._on_publish
        self._client.on_connect = self._on_connect
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        self._client.connect(
            broker.host,
            broker.port,
            clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()
        with self._cond:
            if not self._cond.wait_for(lambda: self.connects > 0, WAIT):
                pytest.fail(f"publisher could not connect to {broker!r}")

    def _on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        with self._cond:
            if not reason.is_failure:
                self.connects += 1
            self._cond.notify_all()

    def _on_publish(
        self, _c: mqtt.Client, _u: object, mid: int, _reason: ReasonCode, _p: object
    ) -> None:
        # paho calls this holding its own message lock: never call paho while holding ours.
        with self._cond:
            self._confirmed += 1
            key = self._pending.pop(mid, None)
            if key is None:
                self._early.add(mid)
            else:
                self._acked.add(key)
            self._cond.notify_all()

    def publish(self, topic: str, payload: bytes, key: str) -> None:
        """Publish once fewer than ``window`` messages await the broker's PUBACK."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._published - self._confirmed < self.window, WAIT
            ):
                pytest.fail(f"no PUBACK for {self.window} messages within {WAIT:g} s")
        # Published while disconnected, the message waits in paho for the reconnect
        # (its info says "not connected"): the PUBACK tells when it really went out.
        info = self._client.publish(topic, payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            # paho keys its queue by the 16-bit message id: past 65,535 messages
            # waiting it refuses more and returns an id still in use (issue #377).
            pytest.fail(f"paho refused {key}: its queue is full ({self.window} in flight)")
        mid = info.mid
        with self._cond:
            self._published += 1
            self._keys.append(key)
            if mid in self._early:
                self._early.discard(mid)
                self._acked.add(key)
            else:
                self._pending[mid] = key

    def publish_all(
        self, messages: Iterable[tuple[str, bytes, str]], *, rate: float | None = None
    ) -> None:
        """Publish (topic, payload, key) triples, at most ``rate`` per second if given."""
        start = time.monotonic()
        for n, (topic, payload, key) in enumerate(messages):
            if rate is not None:
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.publish(topic, payload, key)

    @property
    def count(self) -> int:
        """How many messages were handed to paho so far."""
        with self._cond:
            return len(self._keys)

    def acked(self) -> list[str]:
        """Keys of the messages the broker has acknowledged (PUBACK), in publishing order."""
        with self._cond:
            return [key for key in self._keys if key in self._acked]

    def unacked(self) -> list[str]:
        with self._cond:
            return [key for key in self._keys if key not in self._acked]

    def wait_all_acked(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.unacked():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{len(self.unacked())} publishes unacknowledged after {timeout:g} s;"
                    f" {self.connects} connects; paho holds {self.paho_view()}"
                )
            time.sleep(0.05)

    def paho_view(self) -> str:
        """What paho itself holds, for a failure message (its private state, read only)."""
        client: Any = self._client
        with client._out_message_mutex:
            states = Counter(m.state for m in client._out_messages.values())
            inflight = client._inflight_messages
        return (
            f"{sum(states.values())} messages by state {dict(states)},"
            f" {inflight} counted in flight, {len(client._out_packet)} packets unwritten,"
            f" connection {client._state.name}"
        )

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@dataclass
class PublisherThread:
    """Runs ``Publisher.publish_all`` on a thread; ``join()`` re-raises its failure."""

    publisher: Publisher
    messages: Iterable[tuple[str, bytes, str]]
    rate: float | None = None
    error: BaseException | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> "PublisherThread":
        self._thread = threading.Thread(target=self._run, name="fault-publisher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.publisher.publish_all(self.messages, rate=self.rate)
        except BaseException as error:
            self.error = error

    def join(self, timeout: float = 120.0) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            pytest.fail(f"the publisher thread did not finish within {timeout:g} s")
        if self.error is not None:
            raise self.error


def mqtt_story(daemon: Any) -> str:
    """The daemon's connection events, for a failure message: what it saw of the broker."""
    wanted = ("mqtt_", "store_write")
    return "; ".join(
        f"{e.get('timestamp', '')[11:23]} {e['event']}"
        + (f" session_present={e['session_present']}" if "session_present" in e else "")
        + (f" {e['error']}" if e.get("error") else "")
        for e in daemon.log_events()
        if str(e.get("event", "")).startswith(wanted)
    )


def tcp_peers(port: int) -> set[int]:
    """Client ports of the TCP connections to ``port`` on this host, in any state.

    A stopped (SIGSTOP) broker's kernel still completes handshakes for it, so
    this shows a client's connection attempts that the broker has not seen.
    """
    peers = set()
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        local, remote = line.split()[1:3]
        if int(local.split(":")[1], 16) == port and remote != "00000000:0000":
            peers.add(int(remote.split(":")[1], 16))
    return peers


def rss_kib(pid: int) -> int | None:
    """The resident set size of a process in KiB, or None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


class RssSampler:
    """Samples a process's VmRSS every ``period`` seconds on a thread; keeps the peak."""

    def __init__(self, pid: int, period: float = 0.25) -> None:
        self.pid = pid
        self.period = period
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = rss_kib(self.pid)
            if value is not None:
                self.samples.append(value)
            self._stop.wait(self.period)

    @property
    def peak_mib(self) -> float:
        return round(max(self.samples, default=0) / 1024, 1)
