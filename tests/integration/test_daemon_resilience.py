"""Crashes, restarts, outages and credentials, with a real Mosquitto."""

import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, wait_until
from support.mosquitto import AuthBroker, MqttClientFactory, TlsBroker

pytestmark = pytest.mark.integration


def started(event_id: str) -> bytes:
    return json.dumps({"event_id": event_id, "type": "session_started"}).encode()


def retained_status(factory: MqttClientFactory, broker: MosquittoBroker) -> str:
    """The retained payload of needlecare/status, read by a fresh subscriber."""
    client = factory(broker)
    client.subscribe("needlecare/status")
    [message] = client.received.wait_for_count(1)
    return message.payload.decode()


class TestCrashes:
    def test_sigkill_while_events_arrive_records_each_exactly_once(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Killed three times mid-stream, the daemon still ends with every event, once."""
        total = 1500
        daemon = daemon_factory(mosquitto).start()
        client = mqtt_client_factory(mosquitto)
        published = threading.Event()

        def publish_all() -> None:
            for n in range(total):
                device = ("pen1", "pen2")[n % 2]
                client.publish(f"needlecare/device/{device}/event", started(f"ev{n}"))
            published.set()

        publisher = threading.Thread(target=publish_all)
        publisher.start()
        rng = random.Random(7)
        for round_ in range(3):
            wait_until(
                lambda r=round_: daemon.count("events") >= (r + 1) * total // 5,
                what="progress before the kill",
            )
            # A random extra moment, so kills land mid-batch as well as between.
            time.sleep(rng.uniform(0, 0.05))
            daemon.kill()
            daemon.start()
        publisher.join(60)
        assert published.is_set()
        wait_until(lambda: daemon.count("events") == total, timeout=60, what="every event")
        # Each start opens exactly one session: one per event, none doubled or lost.
        assert total == daemon.count("sessions")
        sessions = daemon.read(lambda s: s.sessions())
        assert 2 == sum(1 for s in sessions if s.is_open)

    def test_events_sent_while_down_arrive_after_restart(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """The broker keeps our session: what was sent during a clean stop is recorded later."""
        daemon = daemon_factory(mosquitto).start()
        assert "online" == retained_status(mqtt_client_factory, mosquitto)
        assert 0 == daemon.stop()
        assert "offline" == retained_status(mqtt_client_factory, mosquitto)
        assert 1 == daemon.log_count("daemon_stopped")
        client = mqtt_client_factory(mosquitto)
        for n in range(50):
            client.publish("needlecare/device/pen1/event", started(f"down{n}"))
        daemon.start()
        wait_until(lambda: daemon.count("events") == 50, what="the queued events")
        assert "online" == retained_status(mqtt_client_factory, mosquitto)

    def test_sigkill_leaves_the_last_will(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """A killed daemon is reported offline by the broker's last will."""
        daemon = daemon_factory(mosquitto).start()
        daemon.kill()
        watcher = mqtt_client_factory(mosquitto)
        watcher.subscribe("needlecare/status")
        watcher.received.wait_for(lambda got: any(m.payload == b"offline" for m in got))


class TestBrokerOutage:
    def test_broker_restart_without_its_memory_reconnects_and_resubscribes(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """A broker that lost our session still gets our subscriptions back on CONNACK."""
        daemon = daemon_factory(mosquitto).start()
        mosquitto.kill()
        for leftover in mosquitto.data_dir.glob("*.db"):
            leftover.unlink()
        mosquitto.start()
        wait_until(lambda: daemon.log_count("mqtt_connected") >= 2, what="a reconnect")
        client = mqtt_client_factory(mosquitto)
        client.publish("needlecare/device/pen1/event", started("after-restart"))
        wait_until(lambda: daemon.count("events") == 1, what="the event after the restart")
        assert daemon.log_count("mqtt_reconnect_scheduled") >= 1


class TestCredentials:
    def test_tls_with_a_client_certificate(
        self,
        mosquitto_tls: TlsBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """The daemon connects over TLS with our CA and its client certificate."""
        certs = mosquitto_tls.certs
        daemon = daemon_factory(
            mosquitto_tls.broker,
            mqtt={
                "host": "localhost",
                "port": mosquitto_tls.tls_port,
                "tls": {
                    "ca_file": str(certs.ca_cert),
                    "cert_file": str(certs.client_cert),
                    "key_file": str(certs.client_key),
                },
            },
        ).start()
        client = mqtt_client_factory(mosquitto_tls.broker)
        client.publish("needlecare/device/pen1/event", started("over-tls"))
        wait_until(lambda: daemon.count("events") == 1, what="the event over TLS")

    def test_tls_without_the_client_certificate_is_refused(
        self, mosquitto_tls: TlsBroker, daemon_factory: DaemonFactory
    ) -> None:
        """Without the client certificate the broker refuses us: exit 3, no retry loop."""
        daemon = daemon_factory(
            mosquitto_tls.broker,
            mqtt={
                "host": "localhost",
                "port": mosquitto_tls.tls_port,
                "tls": {"ca_file": str(mosquitto_tls.certs.ca_cert)},
            },
        ).start(wait_connected=False)
        assert 3 == daemon.wait_exit()
        [gave_up] = [e for e in daemon.log_events() if e.get("event") == "mqtt_gave_up"]
        assert "TLS" in gave_up["error"]

    def test_bad_password_is_a_clear_error_and_exit_code(
        self, mosquitto_auth: AuthBroker, daemon_factory: DaemonFactory
    ) -> None:
        """A wrong password stops the daemon with exit 3 and says why, without the password."""
        wrong = "not-the-password-42"
        daemon = daemon_factory(
            mosquitto_auth.broker,
            mqtt={"username": mosquitto_auth.username, "password": wrong},
        ).start(wait_connected=False)
        assert 3 == daemon.wait_exit()
        [gave_up] = [e for e in daemon.log_events() if e.get("event") == "mqtt_gave_up"]
        assert "refused the connection" in gave_up["error"]
        assert 0 == daemon.log_count("mqtt_reconnect_scheduled")
        assert wrong not in daemon.log_text()

    def test_good_password_from_the_environment(
        self, mosquitto_auth: AuthBroker, daemon_factory: DaemonFactory
    ) -> None:
        """NEEDLECARE_MQTT__PASSWORD supplies the secret; it never reaches the log."""
        daemon = daemon_factory(mosquitto_auth.broker, mqtt={"username": mosquitto_auth.username})
        daemon.env["NEEDLECARE_MQTT__PASSWORD"] = mosquitto_auth.password
        daemon.start()
        assert 0 == daemon.stop()
        assert mosquitto_auth.password not in daemon.log_text()


class TestCheckConfig:
    def test_broken_config_lists_every_problem(self, tmp_path: Path) -> None:
        """``check-config`` prints path, value and message per problem and exits 1."""
        config = tmp_path / "broken.yaml"
        config.write_text(
            "mqtt:\n  port: abc\n  colour: blue\nprofiles:\n  alice:\n    timezone: Mars/Base\n"
            "devices:\n  pen1: {owner: bob}\n",
            encoding="utf-8",
        )
        result = subprocess.run(
            [sys.executable, "-m", "needlecare", "check-config", "-c", str(config)],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin"},
        )
        expected = (
            f"{config}: 4 problems\n"
            f"  mqtt.port: 'abc' (file {config})\n"
            "    not a whole number\n"
            f"  mqtt.colour (file {config})\n"
            "    unknown key (its value is not shown)\n"
            f"  profiles.alice.timezone: 'Mars/Base' (file {config})\n"
            "    unknown time zone\n"
            f"  devices.pen1.owner: 'bob' (file {config})\n"
            "    unknown profile 'bob'\n"
        )
        assert (1, expected, "") == (result.returncode, result.stderr, result.stdout)
