"""The Mosquitto configurations shipped for the drop-in and Compose set-ups, run for real."""

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from needlecare_integrations.broker import port_in_use
from support.deploy import (
    MOSQUITTO_COMPOSE,
    MOSQUITTO_DROP_IN,
    TIMEOUT,
    compose_services,
    ensure_program,
)
from support.mosquitto import MqttClientFactory, free_port, make_password_file

pytestmark = pytest.mark.integration


# --- Mosquitto ---------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where a broker listens (what the MQTT client factory needs of a broker)."""

    host: str
    port: int


def adapted(text: str, replacements: dict[str, str]) -> str:
    """``text`` with whole lines replaced; each line to replace must be there."""
    lines = text.splitlines()
    for old, new in replacements.items():
        assert old in lines, f"expected the line {old!r}"
        lines = [new if line == old else line for line in lines]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def mosquitto_process(config: Path, port: int, output: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``mosquitto -c config`` until it listens on port; SIGTERM (a clean save) at exit."""
    program = ensure_program("mosquitto", "mosquitto")
    with output.open("ab") as out:
        process = subprocess.Popen([program, "-c", str(config)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not port_in_use("127.0.0.1", port):
            exited = process.poll()
            assert exited is None, f"mosquitto exited {exited}: {output.read_text()}"
            assert time.monotonic() < deadline, f"mosquitto not listening: {output.read_text()}"
            time.sleep(0.02)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class BrokerSetup:
    main_config: Path
    persistence_file: Path
    port: int
    username: str | None
    password: str | None
    compose_healthcheck: bool = False


def drop_in_setup(tmp_path: Path) -> BrokerSetup:
    """deploy/mosquitto/mosquitto.conf in a stand-in for Debian's main file."""
    port = free_port()
    user = os.environ.get("USER") or "root"
    passwd = make_password_file(tmp_path / "passwd", "needlecare", "s3cret")
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    drop_in = adapted(
        MOSQUITTO_DROP_IN.read_text(encoding="utf-8"),
        {
            "listener 1883": f"listener {port} 127.0.0.1",
            "password_file /etc/mosquitto/passwd": f"password_file {passwd}",
        },
    )
    (conf_d / "needlecare.conf").write_text(drop_in, encoding="utf-8")
    # What Debian's /etc/mosquitto/mosquitto.conf says, with this test's paths.
    main = tmp_path / "mosquitto.conf"
    main.write_text(
        f"user {user}\n"
        f"pid_file {tmp_path}/mosquitto.pid\n"
        "persistence true\n"
        f"persistence_location {tmp_path}/\n"
        f"log_dest file {tmp_path}/mosquitto.log\n"
        f"include_dir {conf_d}\n",
        encoding="utf-8",
    )
    return BrokerSetup(main, tmp_path / "mosquitto.db", port, "needlecare", "s3cret")


def compose_setup(tmp_path: Path) -> BrokerSetup:
    """deploy/compose/mosquitto.conf with this test's port and data directory."""
    port = free_port()
    user = os.environ.get("USER") or "root"
    text = adapted(
        MOSQUITTO_COMPOSE.read_text(encoding="utf-8"),
        {
            "listener 1883": f"listener {port} 127.0.0.1",
            "persistence_location /mosquitto/data/": f"persistence_location {tmp_path}/",
        },
    )
    main = tmp_path / "mosquitto.conf"
    main.write_text(f"user {user}\n{text}", encoding="utf-8")
    return BrokerSetup(main, tmp_path / "mosquitto.db", port, None, None, compose_healthcheck=True)


@pytest.mark.parametrize(
    "make_setup", [drop_in_setup, compose_setup], ids=["debian-drop-in", "compose"]
)
def test_mosquitto_config_runs_and_keeps_queued_messages_across_a_restart(
    tmp_path: Path,
    mqtt_client_factory: MqttClientFactory,
    make_setup: Callable[[Path], BrokerSetup],
) -> None:
    """The broker starts with the configuration and listens; a persistent session's queue
    survives a restart (persistence on); with the drop-in, anonymous clients are refused.

    The configuration is the file from deploy/ with only its listener, password file and
    persistence location lines swapped for temporary ones.
    """
    setup = make_setup(tmp_path)
    text = setup.main_config.read_text(encoding="utf-8") + "".join(
        p.read_text(encoding="utf-8") for p in sorted(tmp_path.glob("conf.d/*.conf"))
    )
    for line in ("set_tcp_nodelay true", "persistence true", "max_queued_bytes 0"):
        assert line in text.splitlines()
    autosave = int(re.search(r"^autosave_interval (\d+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert 0 < autosave <= 30
    assert int(re.search(r"^max_queued_messages (\d+)$", text, re.M).group(1)) >= 100_000  # type: ignore[union-attr]
    assert int(re.search(r"^max_inflight_messages (\d+)$", text, re.M).group(1)) > 20  # type: ignore[union-attr]

    endpoint = Endpoint("127.0.0.1", setup.port)
    credentials = {"username": setup.username, "password": setup.password}
    client_id = f"persistent-{uuid.uuid4().hex[:8]}"
    topic = f"needlecare/device/pen1/event/{uuid.uuid4().hex[:6]}"
    log = tmp_path / "mosquitto.out"
    with mosquitto_process(setup.main_config, setup.port, log):
        if setup.username is not None:
            anonymous = mqtt_client_factory(endpoint, check=False)  # type: ignore[arg-type]
            assert "Success" != anonymous.outcome
        if setup.compose_healthcheck:
            # compose.yaml's healthcheck command, with compose's $$ unescaped and our port.
            command = compose_services()["mosquitto"]["healthcheck"]["test"]
            assert "CMD" == command[0]
            args = [arg.replace("$$", "$") for arg in command[1:]]
            args[0] = ensure_program("mosquitto_sub", "mosquitto-clients")
            probe = subprocess.run(
                [*args, "-p", str(setup.port)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert 0 == probe.returncode, probe.stderr
            assert probe.stdout.startswith("mosquitto version")
        subscriber = mqtt_client_factory(
            endpoint,  # type: ignore[arg-type]
            client_id=client_id,
            clean_start=False,
            session_expiry=3600,
            **credentials,
        )
        subscriber.subscribe(topic, qos=1)
        subscriber.close()
        publisher = mqtt_client_factory(endpoint, **credentials)  # type: ignore[arg-type]
        for n in range(3):
            publisher.publish(topic, f"event {n}".encode(), qos=1)
        publisher.close()
    assert setup.persistence_file.is_file(), log.read_text()
    with mosquitto_process(setup.main_config, setup.port, log):
        resumed = mqtt_client_factory(
            endpoint,  # type: ignore[arg-type]
            client_id=client_id,
            clean_start=False,
            session_expiry=3600,
            **credentials,
        )
        assert resumed.session_present
        got = resumed.received.wait_for_count(3)
        assert [b"event 0", b"event 1", b"event 2"] == [m.payload for m in got]
