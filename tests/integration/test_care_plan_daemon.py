"""Care plans that stay right, end to end: the daemon as a process, a real Mosquitto.

False starts keep the earlier plan, back-dated sessions plan from their own time (or
change nothing when older than the latest), and a voided session gives the plan back.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integration.test_reminders_daemon import AWAKE, NOTIFY, PEN, PROMPT, STATE, event, retained
from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, DaemonProcess, wait_until
from support.mosquitto import MqttClientFactory, MqttConnection

pytestmark = pytest.mark.integration

COMMAND = "needlecare/profile/alice/command"
PLAN_AHEAD = {"actives_resume", "window_open", "overdue"}


def reminders(daemon: DaemonProcess, **filters: str) -> list[dict[str, Any]]:
    args = [f"--{key}={value}" for key, value in filters.items()]
    rows: list[dict[str, Any]] = json.loads(
        daemon.cli("reminders", "--json", "--profile", "alice", *args).stdout
    )
    return rows


def sessions(daemon: DaemonProcess) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        daemon.cli("sessions", "--json", "--profile", "alice").stdout
    )
    return rows


def pending_plan(daemon: DaemonProcess) -> dict[str, str]:
    """kind -> reminder id of the plan steps still waiting."""
    return {r["kind"]: r["id"] for r in reminders(daemon, status="pending")}


def treated_session(client: MqttConnection, n: int) -> None:
    client.publish(PEN, event(f"start{n}", "session_started"))
    client.publish(PEN, event(f"end{n}", "session_ended", duration_s=900))


def command(client: MqttConnection, **body: Any) -> None:
    client.publish(COMMAND, json.dumps(body).encode())


def notified_kinds(watcher: MqttConnection) -> list[str]:
    return [
        json.loads(m.payload)["kind"]
        for m in watcher.received.messages
        if m.topic == NOTIFY and m.payload
    ]


@pytest.fixture
def daemon(mosquitto: MosquittoBroker, daemon_factory: DaemonFactory) -> DaemonProcess:
    return daemon_factory(mosquitto, profiles=AWAKE).start()


class TestFalseStart:
    @pytest.mark.parametrize("end", ["session_aborted", "session_ended"])
    def test_a_zero_second_session_keeps_the_earlier_plan(
        self,
        end: str,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon: DaemonProcess,
    ) -> None:
        client = mqtt_client_factory(mosquitto)
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe(NOTIFY)
        treated_session(client, 1)
        wait_until(lambda: PLAN_AHEAD <= set(pending_plan(daemon)), what="the first plan")
        plan = pending_plan(daemon)

        client.publish(PEN, event("start2", "session_started"))
        client.publish(PEN, event("end2", end, duration_s=0))
        wait_until(
            lambda: [s["status"] for s in sessions(daemon)] == ["completed", "no_needling"],
            what="the false start recorded as no_needling",
        )
        assert plan == pending_plan(daemon)
        assert [] == reminders(daemon, status="cancelled")
        # The false start still warns that it came too soon; it plans no second soothe.
        wait_until(lambda: "too_soon" in notified_kinds(watcher), what="the too-soon warning")
        assert 1 == notified_kinds(watcher).count("soothe")


class TestBackDated:
    def test_newest_back_dated_session_plans_from_its_own_time(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon: DaemonProcess,
    ) -> None:
        client = mqtt_client_factory(mosquitto)
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe(NOTIFY)
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)  # noqa: TID251
        command(client, action="log_session", timestamp=at.isoformat())
        wait_until(lambda: "window_open" in pending_plan(daemon), what="the back-dated plan")
        rows = {r["kind"]: r for r in reminders(daemon)}
        assert "missed" == rows["soothe"]["status"]
        assert "missed" == rows["serum_window"]["status"]
        opens = datetime.fromisoformat(rows["window_open"]["due_at"]) - at
        overdue = datetime.fromisoformat(rows["overdue"]["due_at"]) - at
        assert timedelta(days=27) < opens < timedelta(days=29)
        assert timedelta(days=41) < overdue < timedelta(days=43)
        assert opens < overdue
        # Steps long past are recorded, not announced as if new.
        assert "soothe" not in notified_kinds(watcher)

    def test_back_dated_session_older_than_the_latest_changes_nothing(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon: DaemonProcess,
    ) -> None:
        client = mqtt_client_factory(mosquitto)
        treated_session(client, 1)
        wait_until(lambda: PLAN_AHEAD <= set(pending_plan(daemon)), what="the plan")
        before = reminders(daemon)
        at = datetime.now(UTC) - timedelta(days=10)  # noqa: TID251
        command(client, action="log_session", timestamp=at.isoformat())
        wait_until(lambda: len(sessions(daemon)) == 2, what="the older session in the journal")
        assert before == reminders(daemon)
        assert 1 == [r["kind"] for r in reminders(daemon, status="pending")].count("window_open")


def retained_prompt_id(factory: MqttClientFactory, broker: MosquittoBroker) -> str | None:
    prompt: dict[str, str] = json.loads(retained(factory, broker, PROMPT) or b"{}")
    return prompt.get("reminder_id")


class TestVoid:
    def test_void_cancels_the_session_and_restores_the_plan_before_it(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon: DaemonProcess,
    ) -> None:
        client = mqtt_client_factory(mosquitto)
        treated_session(client, 1)
        wait_until(lambda: PLAN_AHEAD <= set(pending_plan(daemon)), what="the first plan")
        first = pending_plan(daemon)

        command(client, action="log_session")  # logged by mistake
        wait_until(
            lambda: pending_plan(daemon)["window_open"] != first["window_open"], what="replan"
        )
        mistaken = sessions(daemon)[-1]["id"]
        mistaken_soothe = next(
            r["id"]
            for r in reminders(daemon)
            if r["session_id"] == mistaken and r["kind"] == "soothe"
        )
        wait_until(
            lambda: retained_prompt_id(mqtt_client_factory, mosquitto) == mistaken_soothe,
            what="the mistaken session's soothe as the retained prompt",
        )

        command(client, action="void_session", session_id=mistaken, reason="test press")
        wait_until(
            lambda: [s["status"] for s in sessions(daemon)] == ["completed", "voided"],
            what="the session voided",
        )
        wait_until(lambda: pending_plan(daemon) == first, what="the first plan restored")
        assert {"cancelled"} == {
            r["status"] for r in reminders(daemon) if r["session_id"] == mistaken
        }
        wait_until(
            lambda: retained_prompt_id(mqtt_client_factory, mosquitto) != mistaken_soothe,
            what="the voided session's prompt gone from the retained prompt",
        )
        # Voiding again changes nothing; an unknown id is logged, not fatal.
        command(client, action="void_session", session_id=mistaken)
        command(client, action="void_session", session_id="ses_nope")
        wait_until(lambda: daemon.log_count("session_unknown") == 1, what="the unknown id logged")
        assert 1 == daemon.log_count("session_voided")
        assert pending_plan(daemon) == first


class TestExpiry:
    def test_a_prompt_that_expires_by_itself_leaves_the_retained_state(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """The state is republished when a shown prompt vanishes, not at the next change."""
        steps: dict[str, Any] = {
            name: {"enabled": False}
            for name in ("soothe", "actives_pause", "actives_resume", "window_open", "overdue")
        }
        steps["serum_window"] = {"offset": "PT1S", "expires_after": "PT3S"}
        daemon = daemon_factory(mosquitto, profiles=AWAKE, protocol={"steps": steps}).start()
        client = mqtt_client_factory(mosquitto)
        treated_session(client, 1)

        def open_kinds() -> list[str]:
            state = json.loads(retained(mqtt_client_factory, mosquitto, STATE) or b"{}")
            return [p["kind"] for p in state.get("open_prompts", [])]

        wait_until(lambda: open_kinds() == ["serum_window"], what="the prompt in the state")
        wait_until(lambda: open_kinds() == [], what="the expired prompt gone from the state")
        assert "sent" == reminders(daemon)[0]["status"]
