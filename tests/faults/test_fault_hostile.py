"""Hostile input: 100,000 bad messages through the real broker, valid events in between.

Promise (README, "Bad input"): every bad message is kept as a dead letter with its
reason and acknowledged; nothing else is held up; the daemon carries on.

Topic levels a compliant broker refuses to carry (``+``, ``#``, NUL, extra levels
that no subscription matches) are fed to the ingest code in-process instead.
"""

import json
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from faultkit import Publisher, PublisherThread, RssSampler, event_ids_in, report

from integration.test_reminder_simulation import CONFIG as SIMULATED_HOME
from needlecare.app.inbound import InboundMessage
from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.store import SqliteStore
from support.clock import FakeClock
from support.core_sim import Sim
from support.daemon import DaemonProcess, wait_until

pytestmark = pytest.mark.integration

HOSTILE = 100_000
VALID_EVERY = 20  # one valid event after every 20 hostile ones
PUBLISHERS = 2
SECOND_ROUND = 50_000  # more of the same: RSS must have levelled off
RSS_BOUND_MIB = 512  # a sanity bound, not a benchmark (peaks measured: 149-293 MiB)
RSS_GROWTH_MIB = 32  # allowed rise during the second round
CAP = 65_536  # mqtt.max_payload_bytes (default)
SEED = 4

DEVICE = "needlecare/device/pen1/event"
MIRROR = "needlecare/mirror/hallway/event"
COMMAND = "needlecare/profile/alice/command"
GOOD = {
    DEVICE: {"type": "session_started", "needle_depth_mm": 0.5, "zones": ["forehead"]},
    MIRROR: {"type": "skin_check", "profile": "alice", "redness": 35, "note": "pink"},
    COMMAND: {"action": "snooze", "reminder_id": "rem_x", "minutes": 30},
}
# Per field, values that break the contract: wrong type, out of range, or unknown.
WRONG: dict[str, list[Any]] = {
    "event_id": [123, None, [], {}, True, "", "x" * 129],
    "type": [5, None, "SESSION_STARTED", "self_destruct", ["session_started"]],
    "action": [5, None, "nuke", "ACK"],
    "timestamp": [1_700_000_000, "yesterday", "2026-03-01T20:00:00", "2026-03-01 20:00:00",
                  "2026-03-01", "2026-02-30T20:00:00Z", True],
    "schema_version": [2, 0, "1", 1.0, None],
    "needle_depth_mm": ["0.5", 0, 99, -1, True],
    "zones": ["forehead", [1, 2], [""], ["z"] * 21],
    "profile": ["Alice", "zed", 7, "a/b", "+", ""],
    "redness": ["35", 101, -1, 3.5, None],
    "note": [5, "n" * 1001],
    "reminder_id": [5, None, ""],
    "minutes": [0, 1441, "30", 1.5, None],
}  # fmt: skip
BAD_SLUGS = ["Pen1", "..", "a b", "pén", "x" * 65, "", "ünïcode", "emoji-😀", "pen1 ", "%2e%2e"]
KNOWN = {"device": "pen1", "mirror": "hallway", "profile": "alice"}
LEAF = {"device": "event", "mirror": "event", "profile": "command"}


def body_for(topic: str, rng: random.Random) -> dict[str, Any]:
    body = {"event_id": f"h{rng.getrandbits(48):x}", **GOOD[topic]}
    if topic == COMMAND:
        body.pop("event_id")  # commands may leave it out
    return body


Made = tuple[str, bytes]  # (topic, payload)


def random_bytes(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    return topic, rng.randbytes(rng.randrange(0, 300)).lstrip(b" \t\r\n{")  # never an object


def truncated(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    return topic, raw[: rng.randrange(0, len(raw) - 1)]


def wrong_field(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    fields = [f for f in WRONG if f in body or f in ("timestamp", "schema_version")]
    field = rng.choice(fields)
    return topic, json.dumps({**body, field: rng.choice(WRONG[field])}).encode()


def huge(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    if rng.random() < 0.5 and topic != COMMAND:  # a field far too long, within the cap
        return topic, json.dumps({**body, "event_id": "x" * rng.randrange(129, CAP - 200)}).encode()
    return topic, json.dumps({**body, "padding": "p" * rng.randrange(CAP, CAP + 8000)}).encode()


def deep(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    depth = 10_000
    return topic, rng.choice(
        [
            b"[" * depth + b"]" * depth,
            b"[" * depth,
            b'{"a":' * depth + b"1" + b"}" * depth,
            raw[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}",  # in an ignored field
        ]
    )


def bad_utf8(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    cut = rng.randrange(1, len(raw) - 1)
    invalid = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"])
    return topic, raw[:cut] + invalid + raw[cut:]


def nul_bytes(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    inside = raw.replace(b'": "', b'": "\x00', 1)  # a raw NUL inside the first string value
    return topic, rng.choice([b"\x00" * rng.randrange(1, 64), b"\x00" + raw, inside])


def not_an_event(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    without = {k: v for k, v in body.items() if k not in ("event_id", "type", "action")}
    return topic, rng.choice(
        [b"[]", b'"text"', b"42", b"null", b"true", json.dumps(without).encode()]
    )


def unknown_sender(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    source = rng.choice(["device", "mirror", "profile"])
    unknown = {"device": "pen9", "mirror": "garage", "profile": "zed"}[source]
    return f"needlecare/{source}/{unknown}/{LEAF[source]}", payload_for(source, rng)


def bad_slug(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    source = rng.choice(["device", "mirror", "profile"])
    return f"needlecare/{source}/{rng.choice(BAD_SLUGS)}/{LEAF[source]}", payload_for(source, rng)


def twice(rng: random.Random, topic: str, body: dict[str, Any], raw: bytes) -> Made:
    key = "action" if topic == COMMAND else "type"  # the same key again, with a bad value
    return topic, raw[:-1] + f', "{key}": "nope"}}'.encode()


KINDS: list[Callable[[random.Random, str, dict[str, Any], bytes], Made]] = [
    random_bytes, truncated, wrong_field, wrong_field, wrong_field, huge, deep, bad_utf8,
    nul_bytes, not_an_event, unknown_sender, bad_slug, twice,
]  # fmt: skip


def payload_for(source: str, rng: random.Random) -> bytes:
    template = {"device": DEVICE, "mirror": MIRROR, "profile": COMMAND}[source]
    return json.dumps(body_for(template, rng)).encode()


def hostile(rng: random.Random) -> Made:
    """One message that the contract rejects, of a randomly chosen kind."""
    topic = rng.choice(list(GOOD))
    body = body_for(topic, rng)
    return rng.choice(KINDS)(rng, topic, body, json.dumps(body).encode())


def valid(n: int, rng: random.Random) -> tuple[str, bytes, str]:
    event_id = f"valid-{n:06d}"
    choice = rng.randrange(3)
    if choice == 0:
        # Not a heartbeat: only a device's first heartbeat of a day is kept as an event.
        body: dict[str, Any] = {"type": "session_aborted"}
        topic = f"needlecare/device/pen{1 + n % 2}/event"
    elif choice == 1:
        body = {"type": "skin_check", "profile": rng.choice(["alice", "bob"]), "redness": 20}
        topic = MIRROR
    else:
        body = {"action": "ack_all"}
        topic = f"needlecare/profile/{rng.choice(['alice', 'bob'])}/command"
    return topic, json.dumps({"event_id": event_id, **body}).encode(), event_id


def stream(part: int, hostile_count: int, round_: int) -> Iterator[tuple[str, bytes, str]]:
    """One publisher's share of a round: hostile messages, a valid event after every 20th."""
    rng = random.Random(SEED * 1000 + round_ * 10 + part)
    for n in range(hostile_count // PUBLISHERS):
        topic, payload = hostile(rng)
        yield topic, payload, f"hostile-{round_}-{part}-{n}"
        if (n + 1) % VALID_EVERY == 0:
            yield valid(round_ * 10 * HOSTILE + part * HOSTILE + n, rng)


def send_round(broker: MosquittoBroker, hostile_count: int, round_: int) -> set[str]:
    """Publish a round from PUBLISHERS connections at once; the ids of its valid events."""
    publishers = [Publisher(broker) for _ in range(PUBLISHERS)]
    parts = [list(stream(i, hostile_count, round_)) for i in range(PUBLISHERS)]
    threads = [PublisherThread(p, part).start() for p, part in zip(publishers, parts, strict=True)]
    for thread in threads:
        thread.join(300)
    for publisher in publishers:
        publisher.wait_all_acked()
        publisher.close()
    return {key for part in parts for _, _, key in part if key.startswith("valid")}


def handled(daemon: DaemonProcess) -> int:
    return daemon.count("dead_letters") + daemon.count("events")


def wait_handled(daemon: DaemonProcess, count: int) -> None:
    wait_until(
        lambda: (
            daemon.count("dead_letters") + daemon.count("events") >= count or not daemon.alive()
        ),
        timeout=240,
        what=f"{count} messages handled",
    )
    assert daemon.alive(), "the daemon died"


class TestHostileThroughTheBroker:
    def test_hundred_thousand_hostile_messages_are_dead_lettered_and_the_rest_recorded(
        self, mosquitto: MosquittoBroker, daemon_factory: Callable[..., DaemonProcess]
    ) -> None:
        """Each bad message becomes one dead letter with a reason; every valid event lands.

        Memory: the daemon's RSS is sampled throughout. glibc keeps the heap that
        ~64 KiB payloads fragmented (a high-water mark, see docs/RELIABILITY.md), so
        boundedness is checked directly: a second round of 50,000 must not raise it.
        """
        daemon = daemon_factory(
            mosquitto,
            logging={"level": "INFO", "format": "json"},
            # Every dead letter is counted below: no cap (retention) in this test.
            retention={"dead_letters_max": 1_000_000},
        ).start()
        assert daemon.process is not None
        started = time.monotonic()
        with RssSampler(daemon.process.pid) as rss:
            expected_valid = send_round(mosquitto, HOSTILE, 0)
            published_s = time.monotonic() - started
            wait_handled(daemon, HOSTILE + len(expected_valid))
            elapsed = time.monotonic() - started
            after_first = rss.peak_mib
            expected_valid |= send_round(mosquitto, SECOND_ROUND, 1)
            wait_handled(daemon, HOSTILE + SECOND_ROUND + len(expected_valid))

        assert 0 == daemon.log_count("daemon_failed")
        assert HOSTILE + SECOND_ROUND == daemon.count("dead_letters")
        assert expected_valid == set(event_ids_in(daemon.read))
        letters: list[Any] = daemon.read(lambda s: s.dead_letters())
        assert [] == [d.id for d in letters if not d.reason.strip()]
        internal = [d.reason for d in letters if d.reason.startswith("internal error")]
        assert [] == internal[:5], "a bad message tripped over a bug instead of a check"
        assert rss.peak_mib < RSS_BOUND_MIB
        assert rss.peak_mib <= after_first + RSS_GROWTH_MIB, "RSS still growing in round two"
        report(
            "hostile",
            hostile=HOSTILE,
            second_round=SECOND_ROUND,
            valid=len(expected_valid),
            dead_letters=len(letters),
            peak_rss_mib_round1=after_first,
            peak_rss_mib=rss.peak_mib,
            rss_samples=len(rss.samples),
            published_s=round(published_s, 1),
            seconds_round1=round(elapsed, 1),
            msgs_per_s=round((HOSTILE + HOSTILE // VALID_EVERY) / elapsed),
        )

    def test_extreme_timestamps_do_not_stop_the_daemon(
        self,
        mosquitto: MosquittoBroker,
        daemon_factory: Callable[..., DaemonProcess],
    ) -> None:
        """Timestamps at the ends of the calendar are bad input: the daemon carries on.

        Each must end up as a dead letter or an event, and valid events sent after
        them must be recorded by a daemon that is still running. The open session
        started at 9999-12-31T23:00Z is sent on a device of its own, so that nothing
        else closes it before the daemon works out when it would time out.
        """
        daemon = daemon_factory(mosquitto).start()
        extremes = [
            ("pen1", "session_started", "9999-12-31T23:59:59-12:00"),
            ("pen1", "session_started", "0001-01-01T00:00:00+14:00"),
            ("pen1", "session_ended", "9999-12-25T00:00:00Z"),
            ("pen1", "heartbeat", "9999-12-31T23:59:59Z"),
            ("pen2", "session_started", "9999-12-31T23:00:00Z"),
        ]
        client = Publisher(mosquitto)
        for n, (device, kind, stamp) in enumerate(extremes):
            body = {"event_id": f"extreme-{n}", "type": kind, "timestamp": stamp}
            client.publish(f"needlecare/device/{device}/event", json.dumps(body).encode(), str(n))
        earlier_day = "2026-03-01T12:00:00Z"
        for after in ("after-1", "after-2"):  # two turns: a crash after the first commit shows
            # Each the first heartbeat of its day, so each is kept as an event (retention).
            body = {"event_id": after, "type": "heartbeat"}
            if after == "after-2":
                body["timestamp"] = earlier_day
            client.publish("needlecare/device/pen1/event", json.dumps(body).encode(), after)
            client.wait_all_acked()
            wait_until(
                lambda a=after: a in event_ids_in(daemon.read) or not daemon.alive(),
                what=f"{after}, sent after the extreme timestamps",
            )
        client.close()
        assert daemon.alive(), f"the daemon died (exit {daemon.process and daemon.process.poll()})"
        assert 0 == daemon.log_count("daemon_failed")
        assert len(extremes) + 2 == daemon.count("dead_letters") + daemon.count("events")


def inbound(topic: str, payload: bytes, now: datetime) -> InboundMessage:
    return InboundMessage(topic, payload, now)


class TestTopicsNoBrokerCarries:
    TOPICS = (
        "needlecare/device/+/event",
        "needlecare/device/#/event",
        "needlecare/device/#",
        "needlecare/device/a/b/event",
        "needlecare/device/../event",
        "needlecare/device/pen\x00/event",
        "needlecare/device/pen1\x00/event",
        "needlecare/mirror/+/event",
        "needlecare/profile/#/command",
        "needlecare/profile/alice/../command",
        "needlecare/device/pen1/event/extra",
        "needlecare//pen1/event",
        "needlecare/device/pen1",
        "/needlecare/device/pen1/event",
        "NEEDLECARE/device/pen1/event",
        "needlecare/device/\\xff/event",  # what the MQTT adapter makes of invalid UTF-8
    )

    def test_wildcards_nul_and_extra_levels_are_dead_lettered_with_a_reason(self) -> None:
        """Each off-contract topic becomes a dead letter with a reason; a good one still lands."""
        start = datetime(2026, 3, 1, 12, tzinfo=UTC)
        with tempfile.TemporaryDirectory() as folder:
            store = SqliteStore.open(Path(folder) / "topics.db", now=start)
            try:
                sim = Sim(store, FakeClock(start), SIMULATED_HOME)
                body = json.dumps({"event_id": "t", "type": "heartbeat"}).encode()
                batch = [inbound(topic, body, start) for topic in self.TOPICS]
                good = json.dumps({"event_id": "good", "type": "heartbeat"}).encode()
                batch.append(inbound("needlecare/device/pen1/event", good, start))
                sim.ingest.handle(batch, start)
                letters = store.dead_letters()
                assert sorted(self.TOPICS) == sorted(d.topic for d in letters)
                assert [] == [d.topic for d in letters if not d.reason.strip()]
                assert [] == [d.reason for d in letters if d.reason.startswith("internal")]
                assert store.has_event("good")
            finally:
                store.close()
