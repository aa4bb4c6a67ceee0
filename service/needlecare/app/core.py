"""The core loop: the one thread that changes state.

Everything else (the MQTT network thread, the scheduler, the Home Assistant
worker and listener) only posts to the inbox. Each turn takes whatever has piled
up, records inbound messages in one transaction and acknowledges them, applies
results and answers, does due time-driven work, publishes what changed, feeds
the outboxes and re-arms the single wake-up.
"""

import json
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from needlecare.app import discovery
from needlecare.app.aftercare import Aftercare
from needlecare.app.exit_codes import ExitCode
from needlecare.app.ha_calls import parse_action
from needlecare.app.ha_outbox import HaOutbox
from needlecare.app.health import Health
from needlecare.app.inbound import AckToken, Delivery, InboundMessage
from needlecare.app.ingest import Ingest
from needlecare.app.ports import (
    CheckpointPoke,
    CoreStore,
    MessageBus,
    PublishRefusedError,
    StoreUnavailableError,
    WakeUp,
)
from needlecare.app.projections import Projections
from needlecare.app.publisher import MqttOutbox
from needlecare.app.retention import Retention
from needlecare.clock import Clock
from needlecare.domain.records import EventRecord
from needlecare.domain.topics import Topics
from needlecare.logs import get_logger, held_lines
from needlecare_integrations.homeassistant import HaResult
from needlecare_integrations.mqtt import MqttFatalError

log = get_logger(__name__)

# A turn takes at most this many inbox items. Only a backlog fills it (a drain after a
# restart, a burst): then fewer, larger commits write each touched page fewer times.
# 2,000 instead of 500 halved the bytes written per message in a 20,000-event drain
# (4.8x -> 2.2x its payload) at the same rate (docs/PERFORMANCE.md).
MAX_BATCH = 2000
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
CONFIRM_WITHIN = timedelta(seconds=1)
# Heartbeats held for a shared commit, at most; also below half the broker's in-flight
# window (mqtt.receive_maximum), so that held beats never stop the flow of others.
HOLD_MAX = 64
# The longest a turn waits for the MQTT thread to write its prompts (about 0.1 ms
# when it runs; a stalled connection costs each prompt turn this much at most).
HAND_OVER_S = 0.005
ANNOUNCED = "discovery_profiles"
ANNOUNCED_DEVICES = "discovery_devices"


class Signal(Enum):
    """Inbox items other than deliveries and results."""

    WAKE = "wake"
    STOP = "stop"
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class Fatal:
    error: Exception


@dataclass(frozen=True, slots=True)
class Published:
    mid: int


@dataclass(frozen=True, slots=True)
class PhoneAction:
    action: str


@dataclass(frozen=True, slots=True)
class TodoChecked:
    """An aftercare item checked off on the Home Assistant to-do list."""

    reminder_id: str


@dataclass(frozen=True, slots=True)
class WebCommand:
    """A command from the web app, the same bytes the profile's command topic would carry.

    It is recorded by the same ingest path as one from the broker; ``reply`` then
    gets whether its event is in the journal (called on the core thread).
    """

    profile: str
    payload: bytes
    event_id: str
    reply: Callable[[bool], None]


# A web command has no broker message to acknowledge: QoS 0 tokens are never acked.
_NO_ACK = AckToken(generation=-1, mid=0, qos=0)

InboxItem = (
    Delivery | Signal | Fatal | Published | HaResult | PhoneAction | TodoChecked | WebCommand
)


@dataclass
class CoreLoop:
    inbox: "queue.SimpleQueue[InboxItem]"
    store: CoreStore
    topics: Topics
    ingest: Ingest
    aftercare: Aftercare
    projections: Projections
    outbox: MqttOutbox
    ha: HaOutbox | None
    mqtt: MessageBus
    waker: WakeUp
    clock: Clock
    checkpointer: CheckpointPoke | None = None
    health: Health | None = None
    health_changes: int = -1
    retention: Retention | None = None
    heartbeat_hold: timedelta = timedelta(0)
    hold_max: int = HOLD_MAX
    held: list[Delivery] = field(default_factory=list)
    hold_until: datetime | None = None
    changes_seen: int = 0
    unrecorded: list[Delivery] = field(default_factory=list)
    unconfirmed: list[int] = field(default_factory=list)
    confirm_by: datetime | None = None
    failures: int = 0
    next_due: datetime | None = None
    retry_at: datetime | None = None
    midnight: datetime | None = None
    web_waiting: list[WebCommand] = field(default_factory=list)

    def run(self) -> int:
        while True:
            items = self._next_items()
            with held_lines():
                code = self._handle(items)
            if code is not None:
                return code

    def _handle(self, items: list[InboxItem]) -> int | None:
        """One batch of inbox items; an exit code when the loop must end."""
        self._apply_answers(items)
        for item in items:
            if isinstance(item, Fatal):
                log.error("daemon_failed", error=str(item.error))
                refused = isinstance(item.error, MqttFatalError)
                return ExitCode.BROKER_REFUSED if refused else ExitCode.STORE
        deliveries = [item for item in items if isinstance(item, Delivery)]
        deliveries += self._web_deliveries(items)
        published = [item.mid for item in items if isinstance(item, Published)]
        self._note_confirmations(published)
        if len(published) == len(items) and not self._needs_turn():
            return None
        if Signal.STOP in items:
            self._turn(deliveries, wake=False, hold=False)
            self._answer_web(stopping=True)
            return ExitCode.OK
        if Signal.CONNECTED in items:
            self._announce()
        self._turn(deliveries, wake=Signal.WAKE in items or Signal.CONNECTED in items)
        self._answer_web(stopping=False)
        return None

    def _web_deliveries(self, items: list[InboxItem]) -> list[Delivery]:
        """Web commands as if they had come on the command topic: one writer, one path."""
        commands = [item for item in items if isinstance(item, WebCommand)]
        self.web_waiting += commands
        now = self.clock.now()
        return [
            Delivery(InboundMessage(self.topics.command(c.profile), c.payload, now), _NO_ACK)
            for c in commands
        ]

    def _answer_web(self, *, stopping: bool) -> None:
        """Tell waiting web requests whether their command is in the journal.

        While a failed commit is being retried the answer waits for the retry,
        unless the daemon is stopping.
        """
        if not self.web_waiting or (self.unrecorded and not stopping):
            return
        waiting, self.web_waiting = self.web_waiting, []
        for command in waiting:
            try:
                recorded = self.store.has_event(command.event_id)
            except StoreUnavailableError:
                recorded = False
            command.reply(recorded)

    # -- each turn ------------------------------------------------------------------

    def _turn(self, deliveries: list[Delivery], *, wake: bool, hold: bool = True) -> None:
        """One transaction: record, do due work, take the mirror's outbox; then send, re-arm.

        A single commit per turn keeps an event's prompt one fsync away from the
        event, and a failed commit leaves everything unacknowledged and unsent.
        """
        fresh = self._without_births(deliveries)
        now = self.clock.now()
        if hold and self._hold_heartbeats(fresh, wake=wake, now=now):
            return
        batch = self.unrecorded + self.held + fresh
        self.held, self.hold_until = [], None
        if self.retry_at is not None and now < self.retry_at:
            self.unrecorded = batch  # still backing off: hold on to them, unacknowledged
            return
        due = wake or (self.next_due is not None and self.next_due <= now)
        confirming, self.unconfirmed, self.confirm_by = self.unconfirmed, [], None
        try:
            with self.store.transaction():
                self.outbox.confirm(confirming, now)
                if batch:
                    self.ingest.record([d.message for d in batch], now)
                if due:
                    self.ingest.expire_sessions(now)
                if due or (batch and self._reminder_due(now)):
                    # A prompt the batch made due now goes out in this same turn,
                    # not one scheduler hop and one commit later.
                    self.aftercare.wake(now)
                outgoing = self.outbox.take(now)
        except StoreUnavailableError as error:
            self._back_off(batch, now)
            log.error("store_write_failed", error=str(error), waiting=len(batch))
            return
        except Exception as error:
            self._back_off(batch, now)
            log.exception("turn_failed", error=str(error), waiting=len(batch))
            return
        if self.unrecorded:
            log.info("store_write_recovered", recorded=len(batch))
        self.unrecorded, self.failures, self.retry_at = [], 0, None
        # Prompts first: they are what someone is waiting for; the acks only
        # let the broker forget what is already safe on disk. The MQTT thread
        # writes them, and needs the GIL to: without the wait it mostly waited for
        # the rest of this turn (acks, projections, health), 0.9 ms more at the
        # median of a prompt's way to the mirror (docs/PERFORMANCE.md, Latency).
        if outgoing:
            with self.mqtt.written(within_s=HAND_OVER_S):
                self.outbox.send(outgoing)
        self.mqtt.ack_all([delivery.token for delivery in batch])
        self._purge(now)
        if self.checkpointer is not None and self.store.changes != self.changes_seen:
            self.checkpointer.poke()
            self.changes_seen = self.store.changes
        if self.midnight is None or now >= self.midnight:
            # A new local day changes every profile's recovery day: refresh them all.
            self.aftercare.touched.update(self.aftercare.config.profiles)
            self.midnight = self.aftercare.next_midnight(now)
        if self.ha is not None:
            self.ha.pump(now)
        self._publish_projections(now)
        self._publish_health(now)
        self.next_due = self._next_wake(now)
        self.waker.arm(self.next_due)

    def _hold_heartbeats(self, fresh: list[Delivery], *, wake: bool, now: datetime) -> bool:
        """Let heartbeats that change nothing else wait, unacknowledged, for a shared commit.

        A heartbeat a minute per device, each committed alone, wrote a WAL frame and
        its fsync per beat. Held, several share one commit, and they are still
        acknowledged only after it. Anything else (another message, due work, a
        stop, a wake-up) records them at once, before itself.
        """
        if not fresh or wake or self.unrecorded or self.heartbeat_hold <= timedelta(0):
            return False
        if self.next_due is not None and self.next_due <= now:
            return False
        if len(self.held) + len(fresh) > self.hold_max:
            return False
        if not all(self.ingest.plain_heartbeat(d.message) for d in fresh):
            return False
        self.held += fresh
        log.debug("heartbeats_held", held=len(self.held))
        if self.hold_until is None:
            self.hold_until = now + self.heartbeat_hold
            self.waker.arm(self.hold_until)
        return True

    def _purge(self, now: datetime) -> None:
        """A retention step, in a short transaction of its own, when one is due."""
        if self.retention is None:
            return
        self.retention.note_dead_letters(self.ingest.take_dead_lettered())
        if not self.retention.due(now):
            return
        try:
            with self.store.transaction():
                self.retention.step(now)
            self.retention.give_back(now)
        except StoreUnavailableError as error:
            log.error("store_write_failed", error=str(error), waiting=0)

    def _note_confirmations(self, published: list[int]) -> None:
        """Keep the PUBACKs of outbox items, to be written by a turn within CONFIRM_WITHIN.

        Marking an item sent is not urgent: until then it stays out of the next
        take(), and after a crash it goes out once more with the same id. A turn
        of its own would cost a commit and an fsync just as the prompt reaches
        the mirror; most PUBACKs are for retained state, which nobody waits for.
        """
        awaited = self.outbox.awaited(published)
        if not awaited:
            return
        self.unconfirmed += awaited
        if self.confirm_by is None:
            self.confirm_by = self.clock.now() + CONFIRM_WITHIN
            self.waker.arm(self.confirm_by)

    def _needs_turn(self) -> bool:
        """Whether a turn is due although only PUBACKs arrived."""
        if self.retry_at is not None:
            return True
        now = self.clock.now()
        return any(t is not None and t <= now for t in (self.next_due, self.confirm_by))

    def _reminder_due(self, now: datetime) -> bool:
        due = self.aftercare.store.reminders.next_due_at()
        return due is not None and due <= now

    def _back_off(self, batch: list[Delivery], now: datetime) -> None:
        """Keep the batch unacknowledged (the broker holds it) and retry after a pause."""
        self.ingest.forget()
        self.unrecorded = batch
        delay = RETRY_DELAYS_S[min(self.failures, len(RETRY_DELAYS_S) - 1)]
        self.failures += 1
        self.retry_at = now + timedelta(seconds=delay)
        self.waker.arm(self.retry_at)

    def _next_wake(self, now: datetime) -> datetime | None:
        # The next local midnight is kept from the turn that passed the last one.
        times = [self.ingest.next_wake(), self.aftercare.next_wake(now, outbox=False)]
        times += [self.outbox.next_wake(now), self.midnight]
        times += [self.confirm_by, self.hold_until]
        if self.retention is not None:
            times.append(self.retention.next_wake())
        if self.ha is not None:
            times.append(self.ha.next_wake())
        if self.health is not None and self.mqtt.connected.is_set():
            # Offline, nothing is published; the reconnect publishes it again anyway.
            times.append(self.health.next_wake())
        return min((t for t in times if t is not None), default=None)

    def _publish_projections(self, now: datetime) -> None:
        if not self.aftercare.touched or not self.mqtt.connected.is_set():
            return
        for topic, payload in self.projections.updates(self.aftercare.touched, now):
            if not self._publish_retained(topic, payload):
                return  # the profiles stay touched: the next turn publishes them
            self.projections.mark_published(topic, payload)
        self.aftercare.touched.clear()

    def _publish_retained(self, topic: str, payload: bytes) -> bool:
        """Queue a retained state message; False when paho's queue of 65,535 is full."""
        try:
            self.mqtt.publish(topic, payload, qos=1, retain=True)
        except PublishRefusedError as error:
            log.warning("mqtt_publish_refused", topic=topic, error=str(error))
            return False
        return True

    def _publish_health(self, now: datetime) -> None:
        """The bridge's health topic: read again after a write, at most every few seconds."""
        health = self.health
        if health is None or not self.mqtt.connected.is_set():
            return
        if self.store.changes != self.health_changes:
            self.health_changes = self.store.changes
            health.changed()
        try:
            payload = health.update(now)
        except StoreUnavailableError as error:
            log.error("store_read_failed", error=str(error))
            return
        if payload is not None and self._publish_retained(
            discovery.health_topic(self.topics), payload
        ):
            health.mark_published(payload)

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

    # -- inbound messages -------------------------------------------------------------

    def _without_births(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Home Assistant's birth message is a signal, not an event: act on it here."""
        rest = []
        for delivery in deliveries:
            if delivery.message.topic != self.topics.birth:
                rest.append(delivery)
                continue
            self.mqtt.ack(delivery.token)
            if delivery.message.payload == b"online":
                log.info("homeassistant_birth")
                self._announce()
        return rest

    # -- Home Assistant ---------------------------------------------------------------

    def _apply_answers(self, items: Sequence[InboxItem]) -> None:
        now = self.clock.now()
        for item in items:
            try:
                if isinstance(item, HaResult) and self.ha is not None:
                    self.ha.finished(
                        item.item_id, item.outcome.value, item.error, item.retry_after_s, now
                    )
                elif isinstance(item, PhoneAction):
                    self._phone_action(item.action, now)
                elif isinstance(item, TodoChecked):
                    self._todo_checked(item.reminder_id, now)
            except StoreUnavailableError as error:
                log.error("store_write_failed", error=str(error))

    def _phone_action(self, action: str, now: datetime) -> None:
        parsed = parse_action(action)
        if parsed is None:
            return  # another integration's button
        verb, reminder_id = parsed
        with self.store.transaction():
            record = EventRecord(
                event_id=f"ha:{action}",
                source="homeassistant",
                source_id="mobile_app",
                type=f"phone_{verb.lower()}",
                profile=None,
                occurred_at=now,
                received_at=now,
                payload=json.dumps({"action": action}),
            )
            if not self.store.add_event(record):
                return  # the same button pressed twice
            if verb == "ACK":
                self.aftercare.acknowledge(reminder_id, now)
            else:
                minutes = (
                    self.aftercare.config.homeassistant.snooze_minutes
                    if self.aftercare.config.homeassistant
                    else 30
                )
                self.aftercare.snooze(reminder_id, minutes, now)

    def _todo_checked(self, reminder_id: str, now: datetime) -> None:
        """Checked off in Home Assistant: acknowledge, once (the event id is fixed)."""
        with self.store.transaction():
            record = EventRecord(
                event_id=f"ha:todo:{reminder_id}",
                source="homeassistant",
                source_id="todo",
                type="todo_checked",
                profile=None,
                occurred_at=now,
                received_at=now,
                payload=json.dumps({"reminder_id": reminder_id}),
            )
            if self.store.add_event(record):
                self.aftercare.acknowledge(reminder_id, now)

    def _announce(self) -> None:
        """Publish discovery for every profile and remove profiles that left the config."""
        if not self.mqtt.connected.is_set():
            return
        cfg = self.aftercare.config
        entities = discovery.bridge_entities(self.topics, cfg.devices)
        for profile, profile_cfg in cfg.profiles.items():
            entities += discovery.profile_entities(
                self.topics, profile, profile_cfg.display_name, language=profile_cfg.language
            )
        for topic, config in entities:
            self._publish_retained(topic, json.dumps(config).encode())
        try:
            announced = set(json.loads(self.store.get_meta(ANNOUNCED) or "[]"))
            removals = [
                topic
                for gone in sorted(announced - set(cfg.profiles))
                for topic in discovery.removal_topics(self.topics, gone)
            ]
            devices = set(json.loads(self.store.get_meta(ANNOUNCED_DEVICES) or "[]"))
            removals += [
                topic
                for gone in sorted(devices - set(cfg.devices))
                for topic in discovery.device_removal_topics(self.topics, gone)
            ]
            published = [self._publish_retained(topic, b"") for topic in removals]
            for gone in sorted(announced - set(cfg.profiles)):
                log.info("discovery_removed", profile=gone)
            if all(published):  # else the next announce removes them again
                with self.store.transaction():
                    self.store.set_meta(ANNOUNCED, json.dumps(sorted(cfg.profiles)))
                    self.store.set_meta(ANNOUNCED_DEVICES, json.dumps(sorted(cfg.devices)))
        except StoreUnavailableError as error:
            log.error("store_write_failed", error=str(error))
        self.projections.forget()
        if self.health is not None:
            self.health.forget()
        self.aftercare.touched.update(cfg.profiles)
        log.info("discovery_published", entities=len(entities))
