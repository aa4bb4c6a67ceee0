"""Reminders end to end: the daemon as a process, a real Mosquitto, real SQLite."""

import json
import time
from typing import Any

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, wait_until
from support.mosquitto import MqttClientFactory, MqttConnection

pytestmark = pytest.mark.integration

PEN = "needlecare/device/pen1/event"
MIRROR = "needlecare/mirror/hallway/event"
NOTIFY = "needlecare/mirror/hallway/notify"
PROMPT = "needlecare/profile/alice/prompt"
STATE = "needlecare/profile/alice/state"

# Only the soothe prompt at the session end, so the retained prompt is predictable.
QUIET_PROTOCOL: dict[str, Any] = {
    "steps": {
        name: {"enabled": False}
        for name in ("serum_window", "actives_pause", "actives_resume", "window_open", "overdue")
    }
}
# Quiet hours defer only voice (a Home Assistant channel), never these mirror prompts;
# a one-minute window keeps the state free of surprises whatever the time of the run.
AWAKE = {"alice": {"timezone": "Europe/Berlin", "quiet_hours": {"start": "03:00", "end": "03:01"}}}


def event(event_id: str, kind: str, **fields: Any) -> bytes:
    return json.dumps({"event_id": event_id, "type": kind, **fields}).encode()


def payloads(connection: MqttConnection, topic: str) -> list[dict[str, Any]]:
    return [
        json.loads(m.payload)
        for m in connection.received.messages
        if m.topic == topic and m.payload
    ]


def wait_for_kind(
    connection: MqttConnection, topic: str, kind: str, timeout: float = 5.0
) -> dict[str, Any]:
    connection.received.wait_for(
        lambda got: any(
            m.topic == topic and m.payload and json.loads(m.payload)["kind"] == kind for m in got
        ),
        timeout,
    )
    return next(p for p in payloads(connection, topic) if p["kind"] == kind)


def retained(factory: MqttClientFactory, broker: MosquittoBroker, topic: str) -> bytes | None:
    """The retained payload on ``topic``, or None when nothing is retained."""
    client = factory(broker)
    client.subscribe(topic)
    probe = f"probe/{time.monotonic_ns()}"
    client.subscribe(probe)
    client.publish(probe, b"end")
    got = client.received.wait_for(lambda got: any(m.topic == probe for m in got))
    found = [m.payload for m in got if m.topic == topic]
    return found[0] if found else None


def session(client: MqttConnection, n: int, **start: Any) -> None:
    client.publish(PEN, event(f"start{n}", "session_started", **start))
    client.publish(PEN, event(f"end{n}", "session_ended", duration_s=600))


class TestSootheOnTheMirror:
    def test_session_end_shows_soothe_on_the_mirror_with_prompt_and_state(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """session_ended → soothe notification at once, the retained prompt and the state."""
        daemon = daemon_factory(mosquitto, profiles=AWAKE).start()
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe("needlecare/#")
        client = mqtt_client_factory(mosquitto)
        client.publish(PEN, event("s1", "session_started"))
        client.publish(PEN, event("e1", "session_ended"))
        # A deadline, not a benchmark: the prompt must come from the event, not a poll.
        soothe = wait_for_kind(watcher, NOTIFY, "soothe", timeout=1.0)
        expected = {"profile": "alice", "severity": "warning", "actions": ["ack", "snooze"]}
        assert expected == {key: soothe[key] for key in expected}
        assert soothe["id"] == soothe["reminder_id"]
        # The retained topics follow the notification on the same connection: wait, not race.
        wait_until(
            lambda: (
                json.loads(retained(mqtt_client_factory, mosquitto, PROMPT) or b"{}").get(
                    "reminder_id"
                )
                == soothe["reminder_id"]
            ),
            what="the retained prompt",
        )
        wait_until(
            lambda: (
                json.loads(retained(mqtt_client_factory, mosquitto, STATE) or b"{}").get("status")
                == "recovering"
            ),
            what="the retained state",
        )
        state = json.loads(retained(mqtt_client_factory, mosquitto, STATE) or b"{}")
        assert 0 == state["recovery_day"]
        assert ["actives_pause"] == [r["name"] for r in state["restrictions"]]
        rows = json.loads(daemon.cli("reminders", "--json", "--status", "sent").stdout)
        assert {"soothe", "actives_pause"} <= {r["kind"] for r in rows}
        # The plan is logged once for the session, not once per reminder.
        plans = [e for e in daemon.log_events() if e["event"] == "aftercare_planned"]
        assert 1 == len(plans)
        planned = {entry.split("@")[0] for entry in plans[0]["reminders"]}
        assert {"soothe", "actives_pause", "window_open"} <= planned
        # The broker's PUBACK is written by a later turn, not by a commit of its own;
        # with nothing else going on, the one-second wake-up does it.
        wait_until(
            lambda: [] == json.loads(daemon.cli("outbox", "--json").stdout),
            what=lambda: f"the outbox marked sent: {daemon.cli('outbox').stdout}",
        )

    def test_ack_from_the_mirror_clears_the_prompt(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """A mirror ack marks the reminder acked and empties the retained prompt."""
        daemon = daemon_factory(mosquitto, profiles=AWAKE, protocol=QUIET_PROTOCOL).start()
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe("needlecare/#")
        client = mqtt_client_factory(mosquitto)
        session(client, 1)
        soothe = wait_for_kind(watcher, NOTIFY, "soothe")
        wait_until(lambda: retained(mqtt_client_factory, mosquitto, PROMPT) is not None)
        client.publish(MIRROR, event("ack1", "ack", reminder_id=soothe["reminder_id"]))
        wait_until(
            lambda: retained(mqtt_client_factory, mosquitto, PROMPT) is None, what="prompt cleared"
        )
        [row] = json.loads(daemon.cli("reminders", "--json").stdout)
        assert ("soothe", "acked") == (row["kind"], row["status"])
        state = json.loads(retained(mqtt_client_factory, mosquitto, STATE) or b"{}")
        assert [] == state["open_prompts"]

    def test_presence_shows_open_prompts_again(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Stepping in front of the mirror re-sends the profile's open prompts there."""
        daemon_factory(mosquitto, profiles=AWAKE, protocol=QUIET_PROTOCOL).start()
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe(NOTIFY)
        client = mqtt_client_factory(mosquitto)
        session(client, 1)
        wait_for_kind(watcher, NOTIFY, "soothe")
        client.publish(MIRROR, event("here1", "presence", profile="alice"))
        watcher.received.wait_for(lambda got: len([m for m in got if m.topic == NOTIFY]) == 2)


class TestGuards:
    def test_retinol_during_the_pause_warns(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """product_applied with retinol inside the actives pause → restricted_product."""
        daemon_factory(mosquitto, profiles=AWAKE).start()
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe(NOTIFY)
        client = mqtt_client_factory(mosquitto)
        session(client, 1)
        client.publish(
            MIRROR,
            event("p1", "product_applied", profile="alice", product="Night cream",
                  ingredients=["Retinol 0.3%", "squalane"]),
        )  # fmt: skip
        warning = wait_for_kind(watcher, NOTIFY, "restricted_product")
        assert "warning" == warning["severity"]
        assert "retinoids" in warning["message"]

    def test_second_session_within_28_days_is_too_soon(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """A session started before the next window opens raises too_soon at once."""
        daemon = daemon_factory(mosquitto, profiles=AWAKE).start()
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe(NOTIFY)
        client = mqtt_client_factory(mosquitto)
        session(client, 1)
        wait_for_kind(watcher, NOTIFY, "soothe")
        client.publish(PEN, event("start2", "session_started", needle_depth_mm=2.0))
        too_soon = wait_for_kind(watcher, NOTIFY, "too_soon")
        assert "warning" == too_soon["severity"]
        # The same start exceeds pen1's 1.5 mm limit.
        wait_for_kind(watcher, NOTIFY, "depth_limit")
        # The start alone supersedes nothing: it may still turn out to be a false start.
        rows = json.loads(daemon.cli("reminders", "--json", "--status", "cancelled").stdout)
        assert [] == rows
        client.publish(PEN, event("end2", "session_ended", duration_s=600))
        wait_until(
            lambda: (
                {"window_open", "overdue", "actives_resume"}
                <= {
                    r["kind"]
                    for r in json.loads(
                        daemon.cli("reminders", "--json", "--status", "cancelled").stdout
                    )
                }
            ),
            what="the first session's plan cancelled once the second one ended",
        )


class TestRestarts:
    def test_reminder_due_while_down_is_delivered_late_once(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Stopped past a due time, the daemon delivers it late after the restart, once."""
        protocol = {
            **QUIET_PROTOCOL,
            "steps": {**QUIET_PROTOCOL["steps"], "serum_window": {"offset": "PT2S"}},
        }
        daemon = daemon_factory(
            mosquitto, profiles=AWAKE, protocol=protocol, reminders={"late_after": "PT0.5S"}
        ).start()
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe(NOTIFY)
        client = mqtt_client_factory(mosquitto)
        session(client, 1)
        wait_for_kind(watcher, NOTIFY, "soothe")
        assert 0 == daemon.stop()
        # The serum step falls due 2 s after the end while the daemon is down.
        time.sleep(3)
        daemon.start()
        late = wait_for_kind(watcher, NOTIFY, "serum_window")
        rows = json.loads(daemon.cli("reminders", "--json").stdout)
        statuses = {r["kind"]: r["status"] for r in rows}
        assert {"soothe": "sent", "serum_window": "late"} == statuses
        assert 0 == daemon.stop()
        daemon.start()
        client.publish(PEN, event("hb", "heartbeat"))
        wait_until(lambda: daemon.count("events") == 3, what="the heartbeat after the restart")
        serum = [p for p in payloads(watcher, NOTIFY) if p["kind"] == "serum_window"]
        assert [late] == serum

    def test_reminder_past_its_grace_is_missed_and_summarised(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Too late to be useful: recorded missed, and one summary prompt says so."""
        protocol = {
            **QUIET_PROTOCOL,
            "steps": {**QUIET_PROTOCOL["steps"], "serum_window": {"offset": "PT1S"}},
        }
        daemon = daemon_factory(
            mosquitto, profiles=AWAKE, protocol=protocol, reminders={"grace": "PT1S"}
        ).start()
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe(NOTIFY)
        client = mqtt_client_factory(mosquitto)
        session(client, 1)
        wait_for_kind(watcher, NOTIFY, "soothe")
        assert 0 == daemon.stop()
        time.sleep(3)
        daemon.start()
        summary = wait_for_kind(watcher, NOTIFY, "missed_summary")
        assert "Serum" in summary["message"] or "serum" in summary["message"]
        statuses = {
            r["kind"]: r["status"] for r in json.loads(daemon.cli("reminders", "--json").stdout)
        }
        assert ("missed", "sent") == (statuses["serum_window"], statuses["missed_summary"])
        assert [] == [p for p in payloads(watcher, NOTIFY) if p["kind"] == "serum_window"]


class TestCommands:
    def test_ack_all_and_snooze_commands(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """snooze moves a reminder later; ack_all answers every open prompt."""
        daemon = daemon_factory(mosquitto, profiles=AWAKE).start()
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe(NOTIFY)
        client = mqtt_client_factory(mosquitto)
        session(client, 1)
        soothe = wait_for_kind(watcher, NOTIFY, "soothe")
        result = daemon.cli("snooze", soothe["reminder_id"], "--minutes", "30")
        assert f"snooze: reminder {soothe['reminder_id']}" in result.stdout
        [row] = json.loads(daemon.cli("reminders", "--json", "--status", "snoozed").stdout)
        assert soothe["reminder_id"] == row["id"]
        client.publish("needlecare/profile/alice/command", b'{"action": "ack_all"}')
        wait_until(
            lambda: (
                len(json.loads(daemon.cli("reminders", "--json", "--status", "acked").stdout)) == 2
            ),
            what="soothe and actives_pause acked",
        )
        wait_until(lambda: retained(mqtt_client_factory, mosquitto, PROMPT) is None)
