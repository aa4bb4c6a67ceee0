"""The composition root and the core loop.

Every state change happens on the core thread: the MQTT thread and the
scheduler only post to the inbox. The loop takes whatever has piled up,
records it in one transaction, acknowledges it, and re-arms the next wake-up.
"""

import queue
import signal
import threading
from dataclasses import dataclass, field
from enum import Enum
from types import FrameType

import structlog

from needlecare.app.ingest import Ingest
from needlecare.app.ports import StoreUnavailableError
from needlecare.clock import Clock
from needlecare.config import NeedlecareConfig
from needlecare.domain.topics import Topics
from needlecare_integrations.mqtt import Delivery, MqttClient, MqttFatalError
from needlecare_integrations.scheduler import Waker
from needlecare_integrations.store import SqliteStore

log = structlog.get_logger(__name__)

MAX_BATCH = 500
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Signal(Enum):
    """Inbox items other than deliveries."""

    WAKE = "wake"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Fatal:
    error: Exception


InboxItem = Delivery | Signal | Fatal


class ExitCode:
    """Process exit codes of ``needlecare run``."""

    OK = 0
    CONFIG = 1
    BROKER_REFUSED = 3
    STORE = 4


@dataclass
class Daemon:
    """Owns the adapters and runs the core loop until stopped."""

    config: NeedlecareConfig
    clock: Clock
    inbox: "queue.SimpleQueue[InboxItem]" = field(default_factory=queue.SimpleQueue)
    ready: threading.Event = field(default_factory=threading.Event)

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0) or a fatal error (non-zero)."""
        topics = Topics(self.config.mqtt.base_topic, self.config.mqtt.discovery_prefix)
        store = SqliteStore.open(
            self.config.store.path,
            now=self.clock.now(),
            backup=self.config.store.backup_before_migrate,
        )
        ingest = Ingest(store=store, config=self.config, topics=topics)
        mqtt = MqttClient(
            self.config.mqtt,
            topics=topics,
            clock=self.clock,
            deliver=self.inbox.put,
            on_fatal=lambda error: self.inbox.put(Fatal(error)),
        )
        waker = Waker(lambda: self.inbox.put(Signal.WAKE))
        started: list[MqttClient | Waker] = []
        try:
            for component in (waker, mqtt):
                component.start()
                started.append(component)
            log.info("daemon_started", store=str(store.path), broker=self.config.mqtt.host)
            self.inbox.put(Signal.WAKE)  # catch up on time-driven work missed while down
            self.ready.set()
            return _CoreLoop(self.inbox, ingest, mqtt, waker, self.clock).run()
        finally:
            for component in reversed(started):
                component.stop()
            store.close()
            log.info("daemon_stopped")

    def stop(self) -> None:
        """Ask the core loop to finish (safe from signal handlers and other threads)."""
        self.inbox.put(Signal.STOP)

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


class _CoreLoop:
    def __init__(
        self,
        inbox: "queue.SimpleQueue[InboxItem]",
        ingest: Ingest,
        mqtt: MqttClient,
        waker: Waker,
        clock: Clock,
    ) -> None:
        self._inbox = inbox
        self._ingest = ingest
        self._mqtt = mqtt
        self._waker = waker
        self._clock = clock
        self._unrecorded: list[Delivery] = []
        self._failures = 0

    def run(self) -> int:
        while True:
            items = self._next_items()
            deliveries = [item for item in items if isinstance(item, Delivery)]
            self._record(deliveries)
            for item in items:
                if isinstance(item, Fatal):
                    log.error("daemon_failed", error=str(item.error))
                    code = isinstance(item.error, MqttFatalError)
                    return ExitCode.BROKER_REFUSED if code else ExitCode.STORE
            if Signal.WAKE in items:
                self._on_wake()
            if Signal.STOP in items:
                return ExitCode.OK
            self._waker.arm(self._ingest.next_wake())

    def _next_items(self) -> list[InboxItem]:
        """Block for one item, then take whatever else is already waiting."""
        timeout = None
        if self._unrecorded:
            timeout = RETRY_DELAYS_S[min(self._failures, len(RETRY_DELAYS_S) - 1)]
        try:
            items = [self._inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(items) < MAX_BATCH:
            try:
                items.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return items

    def _record(self, deliveries: list[Delivery]) -> None:
        batch = self._unrecorded + deliveries
        if not batch:
            return
        try:
            self._ingest.handle([delivery.message for delivery in batch])
        except StoreUnavailableError as error:
            # Not acknowledged, so the broker keeps them; we retry with backoff.
            self._unrecorded = batch
            self._failures += 1
            log.error("store_write_failed", error=str(error), waiting=len(batch))
            return
        if self._unrecorded:
            log.info("store_write_recovered", recorded=len(batch))
        self._unrecorded = []
        self._failures = 0
        for delivery in batch:
            self._mqtt.ack(delivery.token)

    def _on_wake(self) -> None:
        try:
            self._ingest.expire_sessions(self._clock.now())
        except StoreUnavailableError as error:
            log.error("store_write_failed", error=str(error))
