"""Secrets never leave the daemon: not in its log, not in what the command line prints.

Promise (README, "Configuration"): ``mqtt.password`` and ``homeassistant.token`` are
never printed or logged. The daemon runs with both set from the environment, is
pushed through a session, a broker restart, an unreachable Home Assistant and a
refused token; then its log and the output of ``outbox``, ``dead-letters``,
``reminders``, ``sessions`` and ``check-config`` (for broken configs holding the
secrets) are searched for them.
"""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from faultkit import Publisher

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, DaemonProcess, wait_until
from support.homeassistant import HomeAssistant
from support.mosquitto import AuthBroker, free_port

SLOW = 60.0
PASSWORD_ENV = "NEEDLECARE_MQTT__PASSWORD"
TOKEN_ENV = "NEEDLECARE_HOMEASSISTANT__TOKEN"


def treat(
    broker: MosquittoBroker, device: str, tag: str, *, user: str | None = None,
    password: str | None = None,
) -> None:  # fmt: skip
    """A session on ``device``, plus a bad message for a dead letter."""
    client = Publisher(broker, username=user, password=password)
    topic = f"needlecare/device/{device}/event"
    for kind in ("session_started", "session_ended"):
        body = json.dumps({"event_id": f"{tag}-{kind}", "type": kind}).encode()
        client.publish(topic, body, kind)
    client.publish(topic, b'{"event_id": 1, "type": "heartbeat"}', "bad")
    client.wait_all_acked()
    client.close()


def everything_printed(daemon: DaemonProcess) -> dict[str, str]:
    """The daemon's log and what the read commands print, by name."""
    printed = {"daemon log": daemon.log_text()}
    for command in (
        ("outbox", "--all", "--json"),
        ("outbox", "--all"),
        ("dead-letters", "--json"),
        ("reminders", "--json"),
        ("sessions", "--json"),
        ("check-config",),
    ):
        result = daemon.cli(*command, check=False)
        printed[" ".join(command)] = result.stdout + result.stderr
    return printed


def leaks(printed: dict[str, str], *secrets: str) -> list[str]:
    return [name for name, text in printed.items() for secret in secrets if secret in text]


@pytest.mark.integration
class TestMqttPasswordAndUnreachableHomeAssistant:
    def test_secrets_stay_out_of_logs_and_output(
        self, mosquitto_auth: AuthBroker, daemon_factory: DaemonFactory
    ) -> None:
        """Password and token from the environment; broker restart, HA unreachable: no leak."""
        token = f"fake-token-{uuid.uuid4().hex}"
        daemon = daemon_factory(
            mosquitto_auth.broker,
            mqtt={"username": mosquitto_auth.username},
            homeassistant={"url": f"http://127.0.0.1:{free_port()}", "timeout_s": 1},
        )
        daemon.env[PASSWORD_ENV] = mosquitto_auth.password
        daemon.env[TOKEN_ENV] = token
        daemon.start()
        auth = {"user": mosquitto_auth.username, "password": mosquitto_auth.password}
        treat(mosquitto_auth.broker, "pen1", "sec", **auth)
        wait_until(lambda: daemon.log_count("homeassistant_unavailable") >= 2, timeout=SLOW)
        mosquitto_auth.broker.restart()  # a reconnect with the credentials
        wait_until(lambda: daemon.log_count("mqtt_connected") >= 2, what="the reconnect")
        treat(mosquitto_auth.broker, "pen2", "sec2", **auth)
        wait_until(lambda: daemon.count("dead_letters") >= 2, what="the bad messages")
        assert 0 == daemon.stop()

        printed = everything_printed(daemon)
        assert [] == leaks(printed, mosquitto_auth.password, token)
        assert "homeassistant_unavailable" in printed["daemon log"]  # the errors did happen
        assert daemon.count("sessions") == 2


BROKEN_CONFIGS = {
    "wrong_types": (
        "mqtt:\n  username: u\n  password: [{password}]\n  port: abc\n"
        "homeassistant:\n  url: not-a-url\n  token: {token}\n  tokn: {token}\n"
    ),
    "secret_on_the_wrong_line": (
        "mqtt:\n  username: u\n  password: {password}\n  port: {password}\n"
        "homeassistant:\n  url: http://ha.local:8123\n  token: {token}\n"
        "profiles:\n  alice:\n    timezone: {token}\n"
    ),
    "broken_yaml_on_the_secret_line": (
        'mqtt:\n  username: u\n  password: "{password}\n  port: [1883\n'
        "homeassistant:\n  token: {token} {{\n"
    ),
    "password_without_user": "mqtt:\n  password: {password}\n  colour: {token}\n",
    "secret_inside_a_longer_value": (
        "mqtt:\n  username: u\n  password: {password}\n  port: '1883 {password}'\n"
        "homeassistant:\n  url: http://ha.local:8123\n  token: {token}\n"
        "profiles:\n  alice:\n    timezone: 'Europe/{token}'\n"
    ),
}


@pytest.mark.integration
class TestCheckConfig:
    @pytest.mark.parametrize("name", sorted(BROKEN_CONFIGS))
    def test_broken_config_holding_the_secrets_never_prints_them(
        self, name: str, tmp_path: Path
    ) -> None:
        """Every problem is reported, exit 1, and neither secret appears in the output."""
        password, token = f"pw-{uuid.uuid4().hex}", f"tok-{uuid.uuid4().hex}"
        config = tmp_path / f"{name}.yaml"
        config.write_text(BROKEN_CONFIGS[name].format(password=password, token=token))
        env = {"PATH": "/usr/bin:/bin", PASSWORD_ENV: password, TOKEN_ENV: token}
        result = subprocess.run(
            [sys.executable, "-m", "needlecare", "check-config", "-c", str(config)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=60,
        )
        assert 1 == result.returncode, result.stdout + result.stderr
        output = result.stdout + result.stderr
        assert [] == [secret for secret in (password, token) if secret in output], output


@pytest.mark.e2e
class TestHomeAssistantTokens:
    @pytest.mark.parametrize("which", ["good", "bad"])
    def test_token_stays_out_of_logs_and_output(
        self,
        which: str,
        homeassistant: HomeAssistant,
        ha_mosquitto: MosquittoBroker,
        daemon_factory: DaemonFactory,
    ) -> None:
        """A working token (prompt delivered) or a refused one (auth failure): never printed."""
        token = homeassistant.token if which == "good" else f"bad-{uuid.uuid4().hex}"
        profile = f"s{uuid.uuid4().hex[:8]}"
        daemon = daemon_factory(
            ha_mosquitto,
            mqtt={"client_id": f"needlecare-{profile}", "session_expiry_s": 60},
            homeassistant={"url": homeassistant.url},
            profiles={profile: {"timezone": "Europe/Berlin"}},
            devices={f"pen_{profile}": {"owner": profile}},
            protocol={"steps": {"serum_window": {"enabled": False}}},
        )
        daemon.env[TOKEN_ENV] = token
        daemon.start()
        treat(ha_mosquitto, f"pen_{profile}", profile)
        if which == "good":
            wait_until(
                lambda: any(
                    row["status"] == "sent" and row["channel"] == "dashboard"
                    for row in json.loads(daemon.cli("outbox", "--all", "--json").stdout)
                ),
                timeout=SLOW,
                what="a dashboard prompt delivered",
            )
        else:
            wait_until(lambda: daemon.log_count("homeassistant_auth_failed") >= 1, timeout=SLOW)
        assert 0 == daemon.stop()
        assert [] == leaks(everything_printed(daemon), token)
