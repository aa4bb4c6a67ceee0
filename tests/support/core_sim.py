"""The daemon's core (ingest and aftercare over a real SQLite file) on a fake clock.

Only the MQTT transport is replaced, by a driver that "sends" every outbox item whose
time has come; property tests drive it with random lives and restarts.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from needlecare.app.aftercare import Aftercare
from needlecare.app.inbound import InboundMessage
from needlecare.app.ingest import Ingest
from needlecare.config import NeedlecareConfig
from needlecare.domain import reminders as rem
from needlecare.domain.outbox import OutboxItem
from needlecare.domain.protocol import build_protocols
from needlecare.domain.topics import Topics
from needlecare_integrations.store import SqliteStore
from support.clock import FakeClock

TOPICS = Topics()


@dataclass
class Sim:
    """The daemon's core, minus MQTT, on a fake clock."""

    store: SqliteStore
    clock: FakeClock
    config: NeedlecareConfig
    delivered: list[tuple[OutboxItem, datetime]] = field(default_factory=list)
    seq: int = 0

    def __post_init__(self) -> None:
        self.boot()

    def boot(self) -> None:
        """A (re)start: fresh objects over the same database, then the start-up wake."""
        self.care = Aftercare(
            store=self.store,
            config=self.config,
            topics=TOPICS,
            protocols=build_protocols(None),
            timing=rem.Timing(),
        )
        self.ingest = Ingest(
            store=self.store, config=self.config, topics=TOPICS, aftercare=self.care
        )
        self.wake()

    def send(self, topic: str, body: dict[str, Any]) -> None:
        self.seq += 1
        payload = json.dumps({"event_id": f"ev{self.seq}", **body}).encode()
        now = self.clock.now()
        self.ingest.handle([InboundMessage(topic, payload, now)], now)
        self.settle()

    def wake(self) -> None:
        now = self.clock.now()
        with self.store.transaction():
            self.ingest.expire_sessions(now)
            self.care.wake(now)
        self.flush()

    def settle(self) -> None:
        due = self.next_wake()
        if due is not None and due <= self.clock.now():
            self.wake()
        else:
            self.flush()

    def next_wake(self) -> datetime | None:
        now = self.clock.now()
        times = [self.ingest.next_wake(), self.care.next_wake(now), self.care.next_midnight(now)]
        times.append(self.store.outbox.next_not_before(("mirror", "dashboard", "mobile", "voice")))
        return min((t for t in times if t is not None), default=None)

    def flush(self) -> None:
        """Deliver every outbox item whose time has come, on every channel."""
        now = self.clock.now()
        with self.store.transaction():
            for item in self.care.release(now, ("mirror", "dashboard", "mobile", "voice")):
                assert item.id is not None
                self.delivered.append((item, now))
                self.store.outbox.mark_sent(item.id, now)

    def run_until(self, target: datetime) -> None:
        """Live through time: wake at every due moment up to ``target``."""
        while (due := self.next_wake()) is not None and due <= target:
            self.clock.set(max(due, self.clock.now()))
            self.wake()
        self.clock.set(target)
        self.settle()

    def down_until(self, target: datetime) -> None:
        """The daemon is down: time passes with no wake, then it starts again."""
        self.clock.set(target)
        self.boot()

    def open_reminder_ids(self, profile: str) -> list[str]:
        return [r.id for r in self.care.open_prompts(profile, self.clock.now())]

    def close(self) -> None:
        self.store.close()
