"""The composition root and the core loop.

Every state change happens on the core thread: the MQTT thread and the
scheduler only post to the inbox. The loop takes whatever has piled up,
records it in one transaction, acknowledges it, sends what the transaction
queued, and re-arms the next wake-up.
"""

import queue
import signal
import threading
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import FrameType

import structlog

from needlecare.app.aftercare import Aftercare
from needlecare.app.ingest import Ingest
from needlecare.app.ports import StoreUnavailableError
from needlecare.app.projections import Projections
from needlecare.app.publisher import MqttOutbox
from needlecare.clock import Clock
from needlecare.config import NeedlecareConfig
from needlecare.domain import reminders as rem
from needlecare.domain.protocol import build_protocols
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
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class Fatal:
    error: Exception


@dataclass(frozen=True, slots=True)
class Published:
    mid: int


InboxItem = Delivery | Signal | Fatal | Published


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
        cfg = self.config
        topics = Topics(cfg.mqtt.base_topic, cfg.mqtt.discovery_prefix)
        store = SqliteStore.open(
            cfg.store.path, now=self.clock.now(), backup=cfg.store.backup_before_migrate
        )
        aftercare = Aftercare(
            store=store,
            config=cfg,
            topics=topics,
            protocols=build_protocols(cfg.protocol),
            timing=rem.Timing(late_after=cfg.reminders.late_after, grace=cfg.reminders.grace),
        )
        ingest = Ingest(store=store, config=cfg, topics=topics, aftercare=aftercare)
        mqtt = MqttClient(
            cfg.mqtt,
            topics=topics,
            clock=self.clock,
            deliver=self.inbox.put,
            on_fatal=lambda error: self.inbox.put(Fatal(error)),
            on_connected=lambda: self.inbox.put(Signal.CONNECTED),
            on_published=lambda mid: self.inbox.put(Published(mid)),
        )
        waker = Waker(lambda: self.inbox.put(Signal.WAKE))
        core = _CoreLoop(
            inbox=self.inbox,
            store=store,
            ingest=ingest,
            aftercare=aftercare,
            projections=Projections(aftercare, topics),
            outbox=MqttOutbox(store, aftercare, mqtt, self.clock),
            mqtt=mqtt,
            waker=waker,
            clock=self.clock,
        )
        started: list[MqttClient | Waker] = []
        try:
            for component in (waker, mqtt):
                component.start()
                started.append(component)
            log.info("daemon_started", store=str(store.path), broker=cfg.mqtt.host)
            self.inbox.put(Signal.WAKE)  # catch up on what fell due while we were down
            self.ready.set()
            return core.run()
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


@dataclass
class _CoreLoop:
    inbox: "queue.SimpleQueue[InboxItem]"
    store: SqliteStore
    ingest: Ingest
    aftercare: Aftercare
    projections: Projections
    outbox: MqttOutbox
    mqtt: MqttClient
    waker: Waker
    clock: Clock
    unrecorded: list[Delivery] = field(default_factory=list)
    failures: int = 0

    def run(self) -> int:
        while True:
            items = self._next_items()
            self._record([item for item in items if isinstance(item, Delivery)])
            self.outbox.confirm([item.mid for item in items if isinstance(item, Published)])
            for item in items:
                if isinstance(item, Fatal):
                    log.error("daemon_failed", error=str(item.error))
                    refused = isinstance(item.error, MqttFatalError)
                    return ExitCode.BROKER_REFUSED if refused else ExitCode.STORE
            if Signal.STOP in items:
                return ExitCode.OK
            if Signal.CONNECTED in items:
                self.projections.forget()
                self.aftercare.touched.update(self.aftercare.config.profiles)
            self._settle(wake=Signal.WAKE in items or Signal.CONNECTED in items)

    def _settle(self, *, wake: bool) -> None:
        """Do due time-driven work, publish what changed, send the outbox, re-arm."""
        now = self.clock.now()
        due = self._next_wake(now)
        if wake or (due is not None and due <= now):
            self._wake(now)
            due = self._next_wake(now)
        self._publish_projections(now)
        self.outbox.pump(now)
        self.waker.arm(due)

    def _next_wake(self, now: datetime) -> datetime | None:
        times = [self.ingest.next_wake(), self.aftercare.next_wake(now)]
        return min((t for t in times if t is not None), default=None)

    def _wake(self, now: datetime) -> None:
        try:
            with self.store.transaction():
                self.ingest.expire_sessions(now)
                self.aftercare.wake(now)
        except StoreUnavailableError as error:
            log.error("store_write_failed", error=str(error))
            return
        # Day boundaries change the recovery day: refresh every profile on a wake.
        self.aftercare.touched.update(self.aftercare.config.profiles)

    def _publish_projections(self, now: datetime) -> None:
        if not self.aftercare.touched or not self.mqtt.connected.is_set():
            return
        for topic, payload in self.projections.updates(self.aftercare.touched, now):
            self.mqtt.publish(topic, payload, qos=1, retain=True)
            self.projections.mark_published(topic, payload)
        self.aftercare.touched.clear()

    def _next_items(self) -> list[InboxItem]:
        """Block for one item, then take whatever else is already waiting."""
        timeout = None
        if self.unrecorded:
            timeout = RETRY_DELAYS_S[min(self.failures, len(RETRY_DELAYS_S) - 1)]
        try:
            items = [self.inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(items) < MAX_BATCH:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return items

    def _record(self, deliveries: list[Delivery]) -> None:
        batch = self.unrecorded + deliveries
        if not batch:
            return
        try:
            self.ingest.handle([delivery.message for delivery in batch], self.clock.now())
        except StoreUnavailableError as error:
            # Not acknowledged, so the broker keeps them; we retry with backoff.
            self.unrecorded = batch
            self.failures += 1
            log.error("store_write_failed", error=str(error), waiting=len(batch))
            return
        if self.unrecorded:
            log.info("store_write_recovered", recorded=len(batch))
        self.unrecorded = []
        self.failures = 0
        for delivery in batch:
            self.mqtt.ack(delivery.token)
