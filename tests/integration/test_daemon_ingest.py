"""The daemon as a process against a real Mosquitto: events in, journal out."""

import json
from typing import Any

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, wait_until
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.integration


def event(event_id: str, kind: str, **fields: Any) -> bytes:
    return json.dumps({"event_id": event_id, "type": kind, **fields}).encode()


class TestSessionsFromEvents:
    def test_device_events_become_sessions_listed_by_the_cli(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """A start and an end on the device topic show up as one completed session."""
        daemon = daemon_factory(mosquitto).start()
        client = mqtt_client_factory(mosquitto)
        topic = "needlecare/device/pen1/event"
        client.publish(
            topic,
            event(
                "e1",
                "session_started",
                timestamp="2026-03-01T20:00:00+01:00",
                needle_depth_mm=0.5,
                zones=["forehead"],
            ),
        )
        client.publish(topic, event("e2", "session_ended", timestamp="2026-03-01T20:15:00+01:00"))
        wait_until(lambda: daemon.count("events") == 2, what="two events")
        listed = json.loads(daemon.cli("sessions", "--json").stdout)
        assert 1 == len(listed)
        expected = {
            "profile": "alice",
            "device_id": "pen1",
            "setting": "home",
            "status": "completed",
            "started_at": "2026-03-01T19:00:00+00:00",
            "ended_at": "2026-03-01T19:15:00+00:00",
            "needle_depth_mm": 0.5,
        }
        assert expected == {key: listed[0][key] for key in expected}
        table = daemon.cli("sessions", "--profile", "alice").stdout
        assert "2026-03-01 20:00 CET" in table

    def test_redelivered_event_is_recorded_once(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """The same event_id twice yields one event and one session."""
        daemon = daemon_factory(mosquitto).start()
        client = mqtt_client_factory(mosquitto)
        for _ in range(3):
            client.publish("needlecare/device/pen1/event", event("same", "session_started"))
        client.publish("needlecare/device/pen1/event", event("later", "heartbeat"))
        wait_until(lambda: daemon.log_count("event_duplicate") == 2, what="two duplicates seen")
        assert (2, 1) == (daemon.count("events"), daemon.count("sessions"))

    def test_log_session_from_the_cli_goes_through_the_daemon(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """``needlecare log-session`` records a professional session, in the profile's time zone."""
        daemon = daemon_factory(mosquitto).start()
        result = daemon.cli(
            "log-session", "--profile", "bob", "--setting", "professional",
            "--at", "2026-07-04 10:30", "--depth", "1.0",
        )  # fmt: skip
        assert result.stdout.startswith("recorded: log_session for bob")
        [session] = json.loads(daemon.cli("sessions", "--json", "--profile", "bob").stdout)
        expected = ("professional", "2026-07-04T14:30:00+00:00", 1.0, "completed")
        assert expected == (
            session["setting"],
            session["ended_at"],
            session["needle_depth_mm"],
            session["status"],
        )

    def test_log_session_command_over_mqtt(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """A button's fixed payload, pressed twice, records two sessions."""
        daemon = daemon_factory(mosquitto).start()
        client = mqtt_client_factory(mosquitto)
        press = b'{"action": "log_session", "setting": "professional"}'
        client.publish("needlecare/profile/alice/command", press)
        client.publish("needlecare/profile/alice/command", press)
        wait_until(lambda: daemon.count("sessions") == 2, what="two logged sessions")


BAD_INPUT = [
    ("needlecare/device/pen1/event", b"{not json", "Invalid JSON"),
    (
        "needlecare/device/pen1/event",
        event("w1", "session_started", needle_depth_mm="deep"),
        "session_started.needle_depth_mm: Input should be a valid number",
    ),
    ("needlecare/device/pen1/event", event("u1", "moonwalk"), "'moonwalk'"),
    (
        "needlecare/device/pen1/event",
        event("big", "heartbeat", pad="x" * 70_000),
        "exceeds the 65536-byte cap",
    ),
    (
        "needlecare/device/pen1/event",
        event("t1", "heartbeat", timestamp="2026-03-01T20:00:00"),
        "heartbeat.timestamp: Input should have timezone info",
    ),
    ("needlecare/device/Pen..1/event", event("s1", "heartbeat"), "bad slug in topic"),
    ("needlecare/device/pen9/event", event("d1", "heartbeat"), "unknown device 'pen9'"),
    (
        "needlecare/mirror/hallway/event",
        event("p1", "presence", profile="carol"),
        "unknown profile 'carol'",
    ),
    ("needlecare/profile/alice/command", b'{"action":"dance"}', "'dance'"),
    ("needlecare/device/pen1/event", b"\xff\xfe\x00garbage", "Invalid JSON"),
    ("needlecare/device/pen1/event", b"[" * 10_000, "recursion limit exceeded"),
]


class TestBadInput:
    def test_bad_input_is_dead_lettered_and_valid_events_all_land(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Each bad message becomes a dead letter with its reason; none of the good ones is lost."""
        daemon = daemon_factory(mosquitto).start()
        client = mqtt_client_factory(mosquitto)
        for n, (topic, payload, _) in enumerate(BAD_INPUT):
            # One heartbeat a day is kept as an event (retention): a day each.
            day = f"2026-03-{n + 1:02d}T20:00:00Z"
            client.publish(
                "needlecare/device/pen2/event", event(f"good{n}", "heartbeat", timestamp=day)
            )
            client.publish(topic, payload)
        client.publish("needlecare/device/pen2/event", event("good-last", "session_started"))
        wait_until(
            lambda: (
                daemon.count("dead_letters") == len(BAD_INPUT)
                and daemon.count("events") == len(BAD_INPUT) + 1
            ),
            what="every dead letter and every good event",
        )
        letters = json.loads(daemon.cli("dead-letters", "--json").stdout)
        for (topic, payload, reason), letter in zip(BAD_INPUT, letters, strict=True):
            assert (topic, len(payload)) == (letter["topic"], letter["payload_size"])
            assert reason in letter["reason"]
        assert daemon.alive()
        assert "unknown device" in daemon.cli("dead-letters").stdout


class TestSimulateAndSignals:
    def test_simulate_feeds_a_running_daemon(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """``needlecare simulate`` publishes a session the daemon records, with mirror events."""
        daemon = daemon_factory(mosquitto).start()
        result = daemon.cli("simulate", "--pace", "0")
        assert "published session_ended" in result.stdout
        wait_until(lambda: daemon.count("events") == 6, what="the six simulated events")
        [session] = json.loads(daemon.cli("sessions", "--json").stdout)
        assert ("completed", 900) == (session["status"], session["duration_s"])
        assert (1, 1) == (daemon.count("skin_checks"), daemon.count("products_applied"))

    def test_sigint_stops_cleanly(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """Ctrl-C (SIGINT) ends the daemon like SIGTERM: exit 0, stopped in order."""
        import signal  # noqa: PLC0415

        daemon = daemon_factory(mosquitto).start()
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGINT)
        assert 0 == daemon.wait_exit()
        assert 1 == daemon.log_count("daemon_stopped")


class TestStatus:
    def test_status_reports_the_daemon_and_the_journal(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """``needlecare status``: online while running, offline after, and the latest events."""
        daemon = daemon_factory(mosquitto).start()
        daemon.cli("simulate", "--pace", "0")
        wait_until(lambda: daemon.count("events") == 6, what="the simulated events")
        report = json.loads(daemon.cli("status", "--json").stdout)
        assert ("online", 5) == (report["daemon"], len(report["recent_events"]))
        assert "product_applied" == report["recent_events"][0]["type"]
        assert report["reminders_waiting"] >= 1
        assert 0 == daemon.stop()
        assert "offline" == json.loads(daemon.cli("status", "--json").stdout)["daemon"]
