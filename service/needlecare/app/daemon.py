"""The composition root: opens the store, connects, builds the core loop, stops in reverse.

The start is ordered for a quick, truthful ``online``: the config is valid (checked
by the caller), the store is open and migrated, then the MQTT connection starts and
says ``online``; once the broker has acknowledged that (or after at most
:data:`CONNECT_HEAD_START_S`), the core loop and its components are imported and
built (:mod:`needlecare.app.assembly`), and logging configured. Until then, the
lines logged are held (:func:`needlecare.logs.early_lines`), and what the connection
reports waits in order in a :class:`_Relay`. A failure after that says ``offline``
again on the way out.
"""

import gc
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any

from needlecare.app.inbound import Delivery
from needlecare.clock import Clock
from needlecare.config import NeedlecareConfig
from needlecare.domain.topics import Topics
from needlecare.logs import get_logger, write_early_lines
from needlecare_integrations.mqtt import MqttClient
from needlecare_integrations.store import SqliteStore

if TYPE_CHECKING:
    from needlecare.app.assembly import Component
    from needlecare.app.core import InboxItem

__all__ = ["Daemon"]

log = get_logger(__name__)

CONNECT_HEAD_START_S = 1.0


class _Relay:
    """Hands the MQTT thread's reports to the inbox; holds them until the core is loaded.

    The connection starts before the core loop's modules are imported, and the inbox
    items it posts are types of those modules; what it reports meanwhile (connected,
    the first deliveries) waits here in order. After :meth:`open` every report goes
    straight to the inbox.
    """

    def __init__(self, inbox: "queue.SimpleQueue[InboxItem]") -> None:
        self._inbox = inbox
        self._lock = threading.Lock()  # the network thread's posts against open()
        self._held: list[Callable[[Any], InboxItem]] = []
        self._core: ModuleType | None = None  # needlecare.app.core, once loaded
        # Set at the first PUBACK (our "online": the broker has taken the subscriptions
        # sent before it) or when the broker refuses us for good.
        self.answered = threading.Event()

    @property
    def core(self) -> ModuleType | None:
        return self._core

    def open(self, core: ModuleType) -> None:
        """Post what was held, in order; from now on post at once."""
        with self._lock:
            for make in self._held:
                self._inbox.put(make(core))
            self._held.clear()
            self._core = core

    def _post(self, make: "Callable[[Any], InboxItem]") -> None:
        core = self._core
        if core is None:
            with self._lock:
                core = self._core
                if core is None:
                    self._held.append(make)
                    return
        self._inbox.put(make(core))

    def deliver(self, delivery: Delivery) -> None:
        if self._core is not None:
            self._inbox.put(delivery)
        else:
            self._post(lambda core: delivery)

    def connected(self) -> None:
        self._post(lambda core: core.Signal.CONNECTED)

    def published(self, mid: int) -> None:
        if not self.answered.is_set():
            self.answered.set()
        self._post(lambda core: core.Published(mid))

    def fatal(self, error: Exception) -> None:
        self.answered.set()
        self._post(lambda core: core.Fatal(error))


@dataclass
class Daemon:
    """Owns the adapters and runs the core loop until stopped."""

    config: NeedlecareConfig
    clock: Clock
    inbox: "queue.SimpleQueue[InboxItem]" = field(default_factory=queue.SimpleQueue)
    ready: threading.Event = field(default_factory=threading.Event)
    _relay: _Relay = field(init=False)
    _stop_asked: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._relay = _Relay(self.inbox)

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0) or a fatal error (non-zero)."""
        cfg = self.config
        topics = Topics(cfg.mqtt.base_topic, cfg.mqtt.discovery_prefix)
        store = SqliteStore.open(
            cfg.store.path, now=self.clock.now(), backup=cfg.store.backup_before_migrate
        )
        relay = self._relay
        mqtt = self._mqtt_client(topics)
        started: list[Component] = []
        closers: list[Callable[[], None]] = [store.close]
        try:
            # The config is valid and the store open: the promise behind "online" holds.
            mqtt.start()
            started.append(mqtt)
            # A head start: the imports below (structlog's, by the logging that is
            # configured now, among them) would hold the GIL while the network thread
            # shakes hands, subscribes and says online (a broker that is down costs
            # this once).
            relay.answered.wait(CONNECT_HEAD_START_S)
            write_early_lines()
            from needlecare.app import assembly, core  # noqa: PLC0415 - after the connect

            relay.open(core)
            if self._stop_asked.is_set():  # asked before the core's types were loaded
                self.inbox.put(core.Signal.STOP)
            built = assembly.assemble(
                config=cfg,
                clock=self.clock,
                inbox=self.inbox,
                store=store,
                topics=topics,
                mqtt=mqtt,
            )
            closers.insert(0, built.health_reader.close)
            for component in built.components:
                component.start()
                started.append(component)
            log.info("daemon_started", store=str(store.path), broker=cfg.mqtt.host)
            # What start-up built lives as long as the process: keep it out of the
            # collector's sight, so a collection during a turn only walks new objects.
            gc.collect()
            gc.freeze()
            gc.enable()  # off during the start when run from the command line (cli.main)
            self.inbox.put(core.Signal.WAKE)  # catch up on what fell due while we were down
            self.ready.set()
            return built.core.run()
        finally:
            for component in reversed(started):
                component.stop()
            for close in closers:
                close()
            log.info("daemon_stopped")

    def _mqtt_client(self, topics: Topics) -> MqttClient:
        relay = self._relay
        return MqttClient(
            self.config.mqtt,
            topics=topics,
            clock=self.clock,
            deliver=relay.deliver,
            on_fatal=relay.fatal,
            on_connected=relay.connected,
            on_published=relay.published,
        )

    def stop(self) -> None:
        """Ask the core loop to finish (safe from signal handlers and other threads).

        A request during the start is posted once the core's types are loaded, ahead
        of the core loop's first turn.
        """
        self._stop_asked.set()  # before looking at the relay: see run()
        core = self._relay.core
        if core is not None:
            self.inbox.put(core.Signal.STOP)

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
