"""ack, snooze, log-session and void-session: durable through a running daemon, or a clear failure.

Every test runs the real daemon and the real command line against a real Mosquitto.
"""

import json
import signal
from typing import Any

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, DaemonProcess, wait_until
from support.mosquitto import MqttClientFactory, MqttConnection

pytestmark = pytest.mark.integration

PEN = "needlecare/device/pen1/event"
COMMANDS = "needlecare/profile/+/command"
NOT_CONFIRMED, NO_DAEMON = 3, 7
# The soothe prompt only (due at the session's end), and awake all day.
ONLY_SOOTHE: dict[str, Any] = {
    "protocol": {
        "steps": {
            name: {"enabled": False}
            for name in (
                "serum_window",
                "actives_pause",
                "actives_resume",
                "window_open",
                "overdue",
            )
        }
    },
    "profiles": {
        "alice": {"timezone": "Europe/Berlin", "quiet_hours": {"start": "03:00", "end": "03:01"}}
    },
}


def event(event_id: str, kind: str, **fields: Any) -> bytes:
    return json.dumps({"event_id": event_id, "type": kind, **fields}).encode()


def treat(client: MqttConnection, n: int) -> None:
    client.publish(PEN, event(f"start{n}", "session_started"))
    client.publish(PEN, event(f"end{n}", "session_ended", duration_s=600))


def reminders(daemon: DaemonProcess) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(daemon.cli("reminders", "--json").stdout)
    return listed


def status_of(daemon: DaemonProcess, reminder_id: str) -> str:
    return str(next(r["status"] for r in reminders(daemon) if r["id"] == reminder_id))


def soothe(daemon: DaemonProcess) -> dict[str, Any]:
    wait_until(
        lambda: any(r["kind"] == "soothe" and r["status"] == "sent" for r in reminders(daemon)),
        timeout=45,  # a deadline for a loaded machine, not a timing assertion
        what="the soothe prompt to be sent",
    )
    return next(r for r in reminders(daemon) if r["kind"] == "soothe")


@pytest.fixture
def watcher(mosquitto: MosquittoBroker, mqtt_client_factory: MqttClientFactory) -> MqttConnection:
    """Sees every command that reaches the broker."""
    client = mqtt_client_factory(mosquitto)
    client.subscribe(COMMANDS)
    return client


@pytest.fixture
def treated(
    mosquitto: MosquittoBroker,
    mqtt_client_factory: MqttClientFactory,
    daemon_factory: DaemonFactory,
) -> DaemonProcess:
    """A running daemon with one treated session of alice's and its soothe prompt sent."""
    daemon = daemon_factory(mosquitto, **ONLY_SOOTHE).start()
    treat(mqtt_client_factory(mosquitto), 1)
    soothe(daemon)
    return daemon


class TestAck:
    def test_ack_through_a_running_daemon_says_what_came_of_it(
        self, treated: DaemonProcess
    ) -> None:
        """The ack is recorded by the daemon and the reminder shown as acked."""
        prompt = soothe(treated)
        result = treated.cli("ack", prompt["id"])
        assert f"ack: reminder {prompt['id']} (Soothe your skin) is now acked\n" == result.stdout
        assert "acked" == status_of(treated, prompt["id"])

    def test_repeated_ack_says_already_acknowledged_and_sends_nothing(
        self, treated: DaemonProcess, watcher: MqttConnection
    ) -> None:
        """A second ack of the same reminder exits 0 saying so, without a second command."""
        prompt = soothe(treated)
        treated.cli("ack", prompt["id"])
        watcher.received.wait_for_count(1)
        again = treated.cli("ack", prompt["id"])
        assert (0, f"reminder {prompt['id']} was already acknowledged; nothing to do\n") == (
            again.returncode,
            again.stdout,
        )
        assert 1 == len(watcher.received.messages)

    def test_ack_with_the_daemon_down_fails_and_sends_nothing(
        self, treated: DaemonProcess, watcher: MqttConnection
    ) -> None:
        """No daemon holds the store: exit 7 naming the store, nothing on the broker, nothing lost.

        When the daemon comes back, the reminder is still unacknowledged: the command line
        never claimed otherwise.
        """
        prompt = soothe(treated)
        assert 0 == treated.stop()
        result = treated.cli("ack", prompt["id"], check=False)
        assert NO_DAEMON == result.returncode
        assert f"no needlecare daemon is running on the store {treated.db}" in result.stderr
        assert "nothing was sent" in result.stderr
        assert "broker keeps" not in result.stderr + result.stdout
        treated.start()
        assert [] == watcher.received.messages
        assert "sent" == status_of(treated, prompt["id"])

    def test_ack_to_a_daemon_that_does_not_answer_exits_3_without_promising(
        self, treated: DaemonProcess
    ) -> None:
        """A stopped (SIGSTOP) daemon holds the store but records nothing: exit 3, honestly."""
        prompt = soothe(treated)
        assert treated.process is not None
        treated.process.send_signal(signal.SIGSTOP)
        try:
            result = treated.cli("ack", prompt["id"], "--wait", "1", check=False)
        finally:
            treated.process.send_signal(signal.SIGCONT)
        assert NOT_CONFIRMED == result.returncode
        assert f"the daemon (pid {treated.process.pid}) has not recorded it within 1 s" in (
            result.stderr
        )
        assert "reached the broker" in result.stderr
        assert "`needlecare reminders`" in result.stderr
        assert "broker keeps" not in result.stderr

    def test_snooze_of_an_acknowledged_reminder_is_refused(self, treated: DaemonProcess) -> None:
        """Nothing to snooze once acknowledged: exit 1 saying why."""
        prompt = soothe(treated)
        treated.cli("ack", prompt["id"])
        result = treated.cli("snooze", prompt["id"], "--minutes", "5", check=False)
        assert 1 == result.returncode
        assert f"reminder {prompt['id']} is acked; it cannot be snoozed" in result.stderr

    def test_snooze_through_a_running_daemon(self, treated: DaemonProcess) -> None:
        """A snooze is recorded and reported as snoozed."""
        prompt = soothe(treated)
        result = treated.cli("snooze", prompt["id"], "--minutes", "5")
        assert result.stdout.endswith("is now snoozed\n")
        assert "snoozed" == status_of(treated, prompt["id"])


class TestLogSession:
    def test_log_session_with_the_daemon_down_fails_and_records_nothing(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """Exit 7 with no daemon; after the daemon starts there is still no such session."""
        daemon = daemon_factory(mosquitto).start()
        assert 0 == daemon.stop()
        result = daemon.cli("log-session", "--profile", "alice", check=False)
        assert NO_DAEMON == result.returncode
        daemon.start()
        assert [] == json.loads(daemon.cli("sessions", "--json").stdout)

    def test_log_session_names_the_recorded_session(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """With the daemon running, the output names the new session's id."""
        daemon = daemon_factory(mosquitto).start()
        result = daemon.cli("log-session", "--profile", "alice", "--setting", "professional")
        [session] = json.loads(daemon.cli("sessions", "--json").stdout)
        expected = f"recorded: log_session for alice: session {session['id']} (completed)\n"
        assert expected == result.stdout


class TestVoidSession:
    def test_void_session_sends_the_documented_command_and_voids(
        self, treated: DaemonProcess, watcher: MqttConnection
    ) -> None:
        """void-session publishes void_session on the profile's topic; the session is voided.

        Its pending reminders are cancelled; a second void says it was already voided.
        """
        [session] = json.loads(treated.cli("sessions", "--json").stdout)
        result = treated.cli("void-session", session["id"], "--reason", "test press")
        [sent] = watcher.received.messages
        command = json.loads(sent.payload)
        assert "needlecare/profile/alice/command" == sent.topic
        assert {"action": "void_session", "session_id": session["id"], "reason": "test press"} == {
            k: command[k] for k in ("action", "session_id", "reason")
        }
        assert command["event_id"].startswith("cli-")
        assert result.stdout.startswith(f"void-session: session {session['id']} (alice) is now")
        [after] = json.loads(treated.cli("sessions", "--json").stdout)
        assert "voided" == after["status"]
        again = treated.cli("void-session", session["id"])
        assert f"session {session['id']} was already voided; nothing to do\n" == again.stdout

    def test_unknown_session_is_a_usage_error(self, treated: DaemonProcess) -> None:
        """An id that is not in the journal exits 2 naming it, before anything is sent."""
        result = treated.cli("void-session", "ses_nope", check=False)
        assert 2 == result.returncode
        assert "no session 'ses_nope'" in result.stderr

    def test_void_session_with_the_daemon_down_fails(self, treated: DaemonProcess) -> None:
        """No daemon: exit 7, and the session stays as it was."""
        [session] = json.loads(treated.cli("sessions", "--json").stdout)
        assert 0 == treated.stop()
        result = treated.cli("void-session", session["id"], check=False)
        assert NO_DAEMON == result.returncode
        [after] = json.loads(treated.cli("sessions", "--json").stdout)
        assert "completed" == after["status"]
