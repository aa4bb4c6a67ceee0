"""The composition root: builds the adapters in order, runs the core loop, stops in reverse."""

import gc
import queue
import signal
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from types import FrameType
from typing import Protocol

import structlog

from needlecare.app.aftercare import Aftercare
from needlecare.app.core import (
    HOLD_MAX,
    CoreLoop,
    ExitCode,
    Fatal,
    InboxItem,
    PhoneAction,
    Published,
    Signal,
    TodoChecked,
)
from needlecare.app.ha_calls import HA_CHANNELS
from needlecare.app.ha_outbox import HaOutbox
from needlecare.app.health import Health
from needlecare.app.ingest import Ingest
from needlecare.app.projections import Projections
from needlecare.app.publisher import MqttOutbox
from needlecare.app.retention import Retention
from needlecare.clock import Clock
from needlecare.config import NeedlecareConfig
from needlecare.domain import reminders as rem
from needlecare.domain.protocol import build_protocols
from needlecare.domain.topics import Topics
from needlecare_integrations.homeassistant import ActionListener, HaWorker, TodoListener
from needlecare_integrations.mqtt import MqttClient
from needlecare_integrations.scheduler import Waker
from needlecare_integrations.store import Checkpointer, SqliteStore
from needlecare_integrations.store.health import StoreHealthReader

__all__ = ["Daemon", "ExitCode"]

log = structlog.get_logger(__name__)


class Component(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


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
        health_reader = StoreHealthReader(store.path)
        checkpointer = Checkpointer(store.path)
        components: list[Component] = [checkpointer, waker]
        ha: HaOutbox | None = None
        if cfg.homeassistant is not None:
            worker = HaWorker(cfg.homeassistant, self.inbox.put)
            listener = ActionListener(cfg.homeassistant, lambda a: self.inbox.put(PhoneAction(a)))
            ha = HaOutbox(aftercare, worker)
            components += [worker, listener]
            if cfg.homeassistant.todo_entity is not None:
                components.append(
                    TodoListener(
                        cfg.homeassistant,
                        cfg.homeassistant.todo_entity,
                        lambda rid: self.inbox.put(TodoChecked(rid)),
                    )
                )
        components.append(mqtt)
        if cfg.web.enabled:
            # Imported only when enabled: a daemon without the web app never loads its stack.
            from needlecare.web.server import WebServer  # noqa: PLC0415

            components.append(
                WebServer(
                    cfg, clock=self.clock, post=self.inbox.put, mqtt_connected=mqtt.connected.is_set
                )
            )
        core = CoreLoop(
            inbox=self.inbox,
            store=store,
            topics=topics,
            ingest=ingest,
            aftercare=aftercare,
            projections=Projections(aftercare, topics),
            outbox=MqttOutbox(store, aftercare, mqtt),
            ha=ha,
            mqtt=mqtt,
            waker=waker,
            clock=self.clock,
            checkpointer=checkpointer,
            health=Health(health_reader, sorted(cfg.devices), HA_CHANNELS),
            retention=Retention(store.retention, cfg.retention),
            heartbeat_hold=timedelta(seconds=cfg.retention.heartbeat_hold_s),
            hold_max=min(HOLD_MAX, cfg.mqtt.receive_maximum // 2),
        )
        started: list[Component] = []
        try:
            for component in components:
                component.start()
                started.append(component)
            log.info("daemon_started", store=str(store.path), broker=cfg.mqtt.host)
            # What start-up built lives as long as the process: keep it out of the
            # collector's sight, so a collection during a turn only walks new objects.
            gc.collect()
            gc.freeze()
            self.inbox.put(Signal.WAKE)  # catch up on what fell due while we were down
            self.ready.set()
            return core.run()
        finally:
            for component in reversed(started):
                component.stop()
            health_reader.close()
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
