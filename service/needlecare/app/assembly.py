"""The core loop and the components around it, built while the MQTT connection comes up.

:class:`needlecare.app.daemon.Daemon` opens the store and starts the connection
first, so the retained ``online`` goes out as soon as the config and the store are
known good; this module, and what it imports (the care plan, the translations,
the scheduler), load meanwhile
(docs/PERFORMANCE.md, Start).
"""

import queue
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from needlecare.app.aftercare import Aftercare
from needlecare.app.core import HOLD_MAX, CoreLoop, InboxItem, PhoneAction, Signal, TodoChecked
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
from needlecare.domain.events import build_adapters
from needlecare.domain.protocol import build_protocols
from needlecare.domain.topics import Topics
from needlecare_integrations.homeassistant import ActionListener, HaWorker, TodoListener
from needlecare_integrations.mqtt import MqttClient
from needlecare_integrations.scheduler import Waker
from needlecare_integrations.store import Checkpointer, SqliteStore
from needlecare_integrations.store.health import StoreHealthReader


class Component(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Assembly:
    """The core loop, the components to start in order, and what to close at the end."""

    core: CoreLoop
    components: list[Component]
    health_reader: StoreHealthReader


def assemble(
    *,
    config: NeedlecareConfig,
    clock: Clock,
    inbox: "queue.SimpleQueue[InboxItem]",
    store: SqliteStore,
    topics: Topics,
    mqtt: MqttClient,
) -> Assembly:
    """Build the core loop around an open store and a started MQTT client."""
    cfg = config
    # The inbound payload models were left unbuilt at import; build them before the
    # first message needs them (a few ms that would otherwise land on its latency).
    build_adapters()
    aftercare = Aftercare(
        store=store,
        config=cfg,
        topics=topics,
        protocols=build_protocols(cfg.protocol),
        timing=rem.Timing(late_after=cfg.reminders.late_after, grace=cfg.reminders.grace),
    )
    ingest = Ingest(store=store, config=cfg, topics=topics, aftercare=aftercare)
    waker = Waker(lambda: inbox.put(Signal.WAKE))
    health_reader = StoreHealthReader(store.path)
    checkpointer = Checkpointer(store.path)
    components: list[Component] = [checkpointer, waker]
    ha: HaOutbox | None = None
    if cfg.homeassistant is not None:
        worker = HaWorker(cfg.homeassistant, inbox.put)
        listener = ActionListener(cfg.homeassistant, lambda a: inbox.put(PhoneAction(a)))
        ha = HaOutbox(aftercare, worker)
        components += [worker, listener]
        if cfg.homeassistant.todo_entity is not None:
            components.append(
                TodoListener(
                    cfg.homeassistant,
                    cfg.homeassistant.todo_entity,
                    lambda rid: inbox.put(TodoChecked(rid)),
                )
            )
    if cfg.web.enabled:
        # Imported only when enabled: a daemon without the web app never loads its stack.
        from needlecare.web.server import WebServer  # noqa: PLC0415

        components.append(
            WebServer(cfg, clock=clock, post=inbox.put, mqtt_connected=mqtt.connected.is_set)
        )
    core = CoreLoop(
        inbox=inbox,
        store=store,
        topics=topics,
        ingest=ingest,
        aftercare=aftercare,
        projections=Projections(aftercare, topics),
        outbox=MqttOutbox(store, aftercare, mqtt),
        ha=ha,
        mqtt=mqtt,
        waker=waker,
        clock=clock,
        checkpointer=checkpointer,
        health=Health(health_reader, sorted(cfg.devices), HA_CHANNELS),
        retention=Retention(store.retention, cfg.retention),
        heartbeat_hold=timedelta(seconds=cfg.retention.heartbeat_hold_s),
        hold_max=min(HOLD_MAX, cfg.mqtt.receive_maximum // 2),
    )
    return Assembly(core=core, components=components, health_reader=health_reader)
