"""The relay between the MQTT thread and the inbox while the core loop is still loading."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import queue
from datetime import UTC, datetime
from typing import Any

from needlecare.app import core
from needlecare.app.daemon import _Relay
from needlecare.app.inbound import AckToken, Delivery, InboundMessage


def delivery(n: int) -> Delivery:
    message = InboundMessage(
        topic="needlecare/device/pen1/event",
        payload=b"{}",
        received_at=datetime(2026, 3, 1, tzinfo=UTC),
        redelivered=False,
    )
    return Delivery(message, AckToken(generation=1, mid=n, qos=1))


def drained(inbox: "queue.SimpleQueue[Any]") -> list[Any]:
    items = []
    while not inbox.empty():
        items.append(inbox.get_nowait())
    return items


class TestRelay:
    def test_reports_wait_until_open_then_arrive_in_order(self) -> None:
        """Nothing reaches the inbox before open(); then everything, as reported."""
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        relay = _Relay(inbox)
        first, second = delivery(1), delivery(2)
        relay.connected()
        relay.deliver(first)
        relay.published(7)
        relay.deliver(second)
        assert [] == drained(inbox)
        relay.open(core)
        expected = [core.Signal.CONNECTED, first, core.Published(7), second]
        assert expected == drained(inbox)

    def test_after_open_reports_go_straight_to_the_inbox(self) -> None:
        """Once open, each report is in the inbox as soon as it is made."""
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        relay = _Relay(inbox)
        relay.open(core)
        error = RuntimeError("refused")
        relay.deliver(delivery(3))
        relay.fatal(error)
        assert [delivery(3), core.Fatal(error)] == drained(inbox)

    def test_the_first_puback_or_a_refusal_ends_the_head_start(self) -> None:
        """answered is set by a PUBACK or a fatal refusal, not by the CONNACK."""
        relay = _Relay(queue.SimpleQueue())
        relay.connected()
        assert not relay.answered.is_set()
        relay.published(1)
        assert relay.answered.is_set()
        refused = _Relay(queue.SimpleQueue())
        refused.fatal(RuntimeError("bad password"))
        assert refused.answered.is_set()
