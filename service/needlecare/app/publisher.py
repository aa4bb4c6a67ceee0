"""Sends the MQTT part of the outbox, and marks each item sent on the broker's PUBACK."""

from collections.abc import Sequence
from datetime import datetime

from needlecare.app.aftercare import Aftercare
from needlecare.app.dispatch import MQTT_CHANNELS
from needlecare.app.ports import AftercareStore, MessageBus, PublishRefusedError
from needlecare.domain.outbox import OutboxItem
from needlecare.logs import get_logger

log = get_logger(__name__)


class MqttOutbox:
    """At-least-once: an item stays pending until the broker confirmed it.

    The confirmation is written by the core loop's next turn, within a second.

    A crash between the PUBACK and the database update sends it once more after
    the restart; notifications carry their reminder's id, so a mirror replaces
    the copy instead of showing it twice.
    """

    def __init__(self, store: AftercareStore, care: Aftercare, mqtt: MessageBus) -> None:
        self._store = store
        self._care = care
        self._mqtt = mqtt
        self._in_flight: dict[int, int] = {}  # message id -> outbox id

    def take(self, now: datetime) -> list[OutboxItem]:
        """Items to publish now (inside the caller's transaction); none while offline."""
        if not self._mqtt.connected.is_set():
            return []
        sending = set(self._in_flight.values())
        return [
            item
            for item in self._care.release(now, MQTT_CHANNELS)
            if item.id is not None and item.id not in sending
        ]

    def next_wake(self, now: datetime) -> datetime | None:
        """When an item not yet on its way may go out; None while offline.

        An item published and waiting for its PUBACK stays pending in the store
        until a turn writes the confirmation. Counted as due, it made every turn
        re-arm the wake-up for at once: a run of empty turns, each with a
        transaction and an APScheduler job, while the prompt was on its way to
        the mirror, and the confirmation written (with its fsync) right behind
        it instead of within the second. Offline nothing is sent, and the
        reconnect brings a turn of its own.
        """
        if not self._mqtt.connected.is_set():
            return None
        due = self._store.outbox.next_not_before(MQTT_CHANNELS)
        if due is None or due > now or not self._in_flight:
            return due
        sending = set(self._in_flight.values())
        ready = self._store.outbox.ready(now, MQTT_CHANNELS, limit=len(sending) + 1)
        if any(item.id not in sending for item in ready):
            return now
        # All that is due is on its way: the next item not yet due, if any.
        return self._store.outbox.next_not_before(MQTT_CHANNELS, after=now)

    def awaited(self, mids: Sequence[int]) -> list[int]:
        """The PUBACKs among these that confirm an outbox item."""
        return [mid for mid in mids if mid in self._in_flight]

    def send(self, items: Sequence[OutboxItem]) -> None:
        """Publish items taken in a transaction that has committed."""
        for item in items:
            assert item.id is not None  # noqa: S101 - taken from the store
            try:
                mid = self._mqtt.publish(item.target, item.payload.encode(), qos=1)
            except PublishRefusedError as error:
                # The item and the rest stay pending and are taken again next turn.
                log.error("outbox_send_refused", outbox_id=item.id, error=str(error))
                return
            self._in_flight[mid] = item.id
            log.debug("outbox_sent", outbox_id=item.id, topic=item.target)

    def confirm(self, mids: Sequence[int], now: datetime) -> None:
        """Mark what the broker acknowledged as sent (inside the caller's transaction).

        If that transaction fails, the items stay pending and go out again later:
        at least once, never lost.
        """
        for mid in mids:
            outbox_id = self._in_flight.pop(mid, None)
            if outbox_id is not None:
                self._store.outbox.mark_sent(outbox_id, now)
