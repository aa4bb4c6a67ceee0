"""Retention and held heartbeats in a running daemon, through a real Mosquitto."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import json
from typing import Any

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, DaemonProcess, wait_until
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.integration

PEN = "needlecare/device/pen1/event"


def body(event_id: str, kind: str, **fields: Any) -> bytes:
    return json.dumps({"event_id": event_id, "type": kind, **fields}).encode()


def battery(daemon: DaemonProcess) -> int | None:
    def query(store: Any) -> int | None:
        row = store._conn.execute(
            "SELECT battery_pct FROM devices WHERE device_id = 'pen1'"
        ).fetchone()
        return None if row is None else int(row[0])

    return daemon.read(query)  # type: ignore[no-any-return]


class TestDeadLetterCap:
    def test_the_newest_are_kept_and_the_dropped_ones_shown(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Cap 20, 50 bad messages: 20 stay, 30 counted, both CLI views say so."""
        retention = {"dead_letters_max": 20, "batch_rows": 10, "interval_s": 1}
        daemon = daemon_factory(mosquitto, retention=retention).start()
        client = mqtt_client_factory(mosquitto)
        for n in range(50):
            client.publish(PEN, f"not json {n}".encode())
        wait_until(
            lambda: daemon.read(lambda s: s.retention.dropped_dead_letters()) == 30,
            what="30 dead letters dropped",
        )
        letters = json.loads(daemon.cli("dead-letters", "--json").stdout)
        assert [f"not json {n}" for n in range(30, 50)] == [d["payload_excerpt"] for d in letters]
        assert "30 older dead letter(s) dropped" in daemon.cli("dead-letters").stdout
        status = json.loads(daemon.cli("status", "--json").stdout)
        assert (20, 30) == (status["dead_letters"], status["dead_letters_dropped"])
        assert 0 == daemon.stop()


class TestHeldHeartbeats:
    def test_a_held_heartbeat_is_recorded_by_the_next_event_or_the_stop(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """The first beat of the day lands at once; later ones wait, but never past a stop."""
        daemon = daemon_factory(mosquitto, retention={"heartbeat_hold_s": 600}).start()
        client = mqtt_client_factory(mosquitto)
        client.publish(PEN, body("hb1", "heartbeat", battery_pct=90))
        wait_until(lambda: 1 == daemon.count("events"), what="the day's first heartbeat")
        client.publish(PEN, body("hb2", "heartbeat", battery_pct=80))
        wait_until(lambda: daemon.log_count("heartbeats_held") >= 1, what="the beat held")
        # Another event records the held beat first, in the same commit.
        client.publish("needlecare/mirror/hallway/event", body("p1", "presence", profile="alice"))
        wait_until(lambda: 2 == daemon.count("events"), what="the presence event")
        assert 80 == battery(daemon)
        client.publish(PEN, body("hb3", "heartbeat", battery_pct=70))
        wait_until(lambda: daemon.log_count("heartbeats_held") >= 2, what="the next beat held")
        assert 0 == daemon.stop()
        assert 70 == battery(daemon)
        # One event row for the day's beats, however many came.
        assert 2 == daemon.count("events")
