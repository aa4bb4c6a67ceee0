"""Sends the MQTT part of the outbox, and marks each item sent on the broker's PUBACK."""

from collections.abc import Sequence
from datetime import datetime

import structlog

from needlecare.app.aftercare import MQTT_CHANNELS, Aftercare
from needlecare.app.ports import StoreUnavailableError
from needlecare.clock import Clock
from needlecare_integrations.mqtt import MqttClient
from needlecare_integrations.store import SqliteStore

log = structlog.get_logger(__name__)


class MqttOutbox:
    """At-least-once: an item stays pending until the broker confirmed it.

    A crash between the PUBACK and the database update sends it once more after
    the restart; notifications carry their reminder's id, so a mirror replaces
    the copy instead of showing it twice.
    """

    def __init__(self, store: SqliteStore, care: Aftercare, mqtt: MqttClient, clock: Clock) -> None:
        self._store = store
        self._care = care
        self._mqtt = mqtt
        self._clock = clock
        self._in_flight: dict[int, int] = {}  # message id -> outbox id

    def pump(self, now: datetime) -> None:
        if not self._mqtt.connected.is_set():
            return
        sending = set(self._in_flight.values())
        try:
            with self._store.transaction():
                ready = self._care.release(now, MQTT_CHANNELS)
        except StoreUnavailableError as error:
            log.error("store_write_failed", error=str(error))
            return
        for item in ready:
            if item.id is None or item.id in sending:
                continue
            mid = self._mqtt.publish(item.target, item.payload.encode(), qos=1)
            self._in_flight[mid] = item.id
            log.debug("outbox_sent", outbox_id=item.id, topic=item.target)

    def confirm(self, mids: Sequence[int]) -> None:
        confirmed = [self._in_flight.pop(mid) for mid in mids if mid in self._in_flight]
        if not confirmed:
            return
        now = self._clock.now()
        try:
            with self._store.transaction():
                for outbox_id in confirmed:
                    self._store.outbox.mark_sent(outbox_id, now)
        except StoreUnavailableError as error:
            log.error("store_write_failed", error=str(error))
