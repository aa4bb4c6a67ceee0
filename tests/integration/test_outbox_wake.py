"""The mirror's outbox asks for a turn only for items not already on their way.

A prompt published and waiting for its PUBACK is still pending in the store. When
the outbox counted it as due, every turn re-armed the wake-up for at once, and the
core loop ran empty turns back to back until the confirmation was written: work
and a commit while the prompt was travelling to the mirror. Real store, real
Mosquitto.
"""

import queue
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from needlecare.app.aftercare import Aftercare
from needlecare.app.inbound import Delivery
from needlecare.app.publisher import MqttOutbox
from needlecare.config import MqttConfig, NeedlecareConfig
from needlecare.domain import reminders as rem
from needlecare.domain.outbox import OutboxItem
from needlecare.domain.protocol import build_protocols
from needlecare.domain.topics import Topics
from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.mqtt import MqttClient
from needlecare_integrations.store import SqliteStore
from support.clock import FakeClock
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOPIC = "needlecare/mirror/hallway/notify"
CONFIG = NeedlecareConfig.model_validate(
    {"profiles": {"alice": {"timezone": "Europe/Berlin"}}, "mirrors": {"hallway": {}}}
)


class Setup:
    def __init__(self, store: SqliteStore, client: MqttClient, acked: "queue.SimpleQueue[int]"):
        self.store = store
        self.client = client
        self.acked = acked
        care = Aftercare(
            store=store,
            config=CONFIG,
            topics=Topics(),
            protocols=build_protocols(None),
            timing=rem.Timing(),
        )
        self.outbox = MqttOutbox(store, care, client)

    def add(self, key: str, not_before: datetime) -> None:
        item = OutboxItem(key, "mirror", TOPIC, f'{{"key": "{key}"}}', not_before, NOW)
        with self.store.transaction():
            assert self.store.outbox.add(item)

    def send_due(self) -> list[int]:
        with self.store.transaction():
            taken = self.outbox.take(NOW)
        self.outbox.send(taken)
        return [item.id for item in taken if item.id is not None]

    def next_wake(self) -> datetime | None:
        return self.outbox.next_wake(NOW)


@pytest.fixture
def setup(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[Setup]:
    acked: queue.SimpleQueue[int] = queue.SimpleQueue()
    inbox: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
    client = MqttClient(
        MqttConfig(host=mosquitto.host, port=mosquitto.port, client_id="outbox-wake"),
        topics=Topics(),
        clock=FakeClock(NOW),
        deliver=inbox.put,
        on_fatal=lambda error: None,
        on_published=acked.put,
    )
    store = SqliteStore.open(tmp_path / "needlecare.db", now=NOW)
    client.start()
    try:
        assert client.connected.wait(5)
        yield Setup(store, client, acked)
    finally:
        client.stop()
        store.close()


class TestOutboxWake:
    def test_an_item_on_its_way_is_not_due_again_until_confirmed(
        self, setup: Setup, mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory
    ) -> None:
        mirror = mqtt_client_factory(mosquitto)
        mirror.subscribe(TOPIC)
        setup.add("soothe", NOW)
        assert NOW == setup.next_wake()  # ready and not sent: a turn now
        sent = setup.send_due()
        assert 1 == len(sent)
        # Published, PUBACK not yet written: no turn for it (its PUBACK brings one).
        assert setup.next_wake() is None
        mid = setup.acked.get(timeout=5)
        while not setup.outbox.awaited([mid]):  # the PUBACK of the client's own "online"
            mid = setup.acked.get(timeout=5)
        with setup.store.transaction():
            setup.outbox.confirm([mid], NOW)
        assert setup.next_wake() is None  # nothing left pending
        assert [b'{"key": "soothe"}'] == [m.payload for m in mirror.received.wait_for_count(1)]

    def test_a_new_item_beside_one_on_its_way_is_due_at_once(self, setup: Setup) -> None:
        setup.add("first", NOW)
        setup.send_due()
        setup.add("second", NOW)
        assert NOW == setup.next_wake()

    def test_a_later_item_keeps_its_time_beside_one_on_its_way_or_none(self, setup: Setup) -> None:
        later = NOW + timedelta(minutes=5)
        setup.add("later", later)
        assert later == setup.next_wake()
        setup.add("now", NOW)
        setup.send_due()
        assert later == setup.next_wake()

    def test_offline_nothing_is_due(self, setup: Setup) -> None:
        """Nothing can be sent offline; the reconnect brings a turn of its own."""
        setup.add("soothe", NOW)
        setup.client.stop()
        assert not setup.client.connected.is_set()
        assert setup.next_wake() is None
