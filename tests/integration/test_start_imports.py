"""The daemon's start path imports only what the way to ``online`` needs.

``needlecare run`` runs in a subprocess of its own with a probe around it, which
writes the process's ``sys.modules`` (and whether the garbage collector is on) three
times: when the daemon starts its MQTT connection (everything imported before that
lies on the way to the retained ``online``), when the probe receives the retained
``online``, and when the process exits after a SIGTERM (everything the run ever
loaded). The core loop's modules load
while the connection comes up; Home Assistant's client, the web stack and the
report's plotting only when enabled (docs/PERFORMANCE.md, Start).
"""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import json
import os
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import BASE_CONFIG, deep_merge
from support.start_path import AFTER_CONNECT, HOME_ASSISTANT, REPORT, WEB

pytestmark = pytest.mark.integration

PROBE = """
import atexit, gc, json, os, signal, sys, threading
from datetime import UTC, datetime

config_path, out, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
seen = {}


def snapshot(name):
    at = datetime.now(UTC).isoformat()
    seen[name] = {"modules": sorted(sys.modules), "gc": gc.isenabled(), "at": at}
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(seen, handle)


def watch():
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=mqtt.MQTTv5)

    def on_message(_client, _userdata, message):
        if message.payload == b"online":
            snapshot("online")
            os.kill(os.getpid(), signal.SIGTERM)

    client.on_connect = lambda c, *a: c.subscribe("needlecare/status", 1)
    client.on_message = on_message
    client.connect(host, port)
    client.loop_forever()


threading.Thread(target=watch, daemon=True).start()
atexit.register(snapshot, "exit")

# The daemon's own connection: note what is loaded at the moment it starts. Its
# start module first, as `needlecare run` loads it before the adapters it uses.
import needlecare.app.run
from needlecare_integrations.mqtt import client as daemon_mqtt

start = daemon_mqtt.MqttClient.start


def noted_start(self):
    snapshot("connecting")
    start(self)


daemon_mqtt.MqttClient.start = noted_start

from needlecare.cli.main import main

sys.argv = ["needlecare", "run", "-c", config_path]
main()
"""


def probe(broker: MosquittoBroker, workdir: Path, **extra: Any) -> tuple[dict[str, Any], str]:
    """The probe's three snapshots for a daemon with ``extra`` config, and its log."""
    store = {"store": {"path": str(workdir / "needlecare.db")}}
    mqtt = {"mqtt": {"host": broker.host, "port": broker.port}}
    config = deep_merge(deep_merge(BASE_CONFIG, {**store, **mqtt}), extra)
    config["logging"] = {"level": "INFO", "format": "json"}
    config_path = workdir / "needlecare.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = workdir / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("NEEDLECARE_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config_path), str(out), broker.host, str(broker.port)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.exists(), f"the probe wrote nothing (exit {done.returncode}):\n{done.stderr}"
    assert 0 == done.returncode, done.stderr
    found = json.loads(out.read_text(encoding="utf-8"))
    assert {"connecting", "online", "exit"} == set(found), done.stderr
    return found, done.stderr


def snapshots(broker: MosquittoBroker, workdir: Path, **extra: Any) -> dict[str, set[str]]:
    """The probe's three snapshots of ``sys.modules`` for a daemon with ``extra`` config.

    Under the key ``gc``, the snapshots at which the garbage collector was on.
    """
    found, _ = probe(broker, workdir, **extra)
    seen = {name: set(snapshot["modules"]) for name, snapshot in found.items()}
    seen["gc"] = {name for name, snapshot in found.items() if snapshot["gc"]}
    return seen


def loaded(modules: set[str], stacks: set[str]) -> set[str]:
    return {m for m in modules for s in stacks if m == s or m.startswith(f"{s}.")}


class TestStartPath:
    def test_the_default_daemon_never_imports_home_assistant_web_or_report(
        self, mosquitto: MosquittoBroker, tmp_path: Path
    ) -> None:
        """Nothing of those stacks is loaded at any point of a run without them."""
        seen = snapshots(mosquitto, tmp_path)
        assert "needlecare.app.daemon" in seen["connecting"]
        assert "needlecare.app.core" in seen["exit"]
        assert set() == loaded(seen["exit"], HOME_ASSISTANT | WEB | REPORT)

    def test_the_way_to_online_imports_none_of_the_core_loop_or_other_commands(
        self, mosquitto: MosquittoBroker, tmp_path: Path
    ) -> None:
        """When the connection starts, only config, store, logging and MQTT are loaded."""
        seen = snapshots(mosquitto, tmp_path)
        assert {"needlecare.config", "needlecare_integrations.store"} <= seen["connecting"]
        assert set() == loaded(seen["connecting"], AFTER_CONNECT)
        # The control: the same probe sees the core loop once the run is over.
        assert {"needlecare.app.core", "needlecare.domain.planning"} <= seen["exit"]

    def test_lines_logged_before_the_connect_are_written_later_with_their_own_time(
        self, mosquitto: MosquittoBroker, tmp_path: Path
    ) -> None:
        """structlog loads after online; what was logged before it comes out all the same.

        The first start migrates the new store before it connects: those lines are
        held, then written in order, stamped when they happened, not when written.
        """
        found, log = probe(mosquitto, tmp_path)
        assert "structlog" not in found["connecting"]["modules"]
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        events = [line["event"] for line in lines]
        connected = events.index("mqtt_connected")
        migrated = [n for n, event in enumerate(events) if event == "store_migrated"]
        assert migrated, log
        assert migrated == list(range(len(migrated))), "the migrations come first, in order"
        assert connected < events.index("daemon_started") < events.index("daemon_stopped")
        stamps = [datetime.fromisoformat(line["timestamp"]) for line in lines]
        assert stamps == sorted(stamps)
        connecting = datetime.fromisoformat(found["connecting"]["at"])
        assert all(stamps[n] < connecting for n in migrated)

    def test_the_collector_is_off_during_the_start_and_on_once_started(
        self, mosquitto: MosquittoBroker, tmp_path: Path
    ) -> None:
        """gc is off on the way to online (10 % of it went to collections), then on for good."""
        seen = snapshots(mosquitto, tmp_path)
        assert "connecting" not in seen["gc"]
        assert "exit" in seen["gc"]

    def test_enabling_the_web_app_loads_its_stack_after_the_connect(
        self, mosquitto: MosquittoBroker, tmp_path: Path
    ) -> None:
        """The control for the stacks: the probe does see one that is enabled."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        web = {"enabled": True, "host": "127.0.0.1", "port": port}
        seen = snapshots(mosquitto, tmp_path, web=web)
        assert set() == loaded(seen["connecting"], WEB)
        assert {"fastapi", "needlecare.web"} <= loaded(seen["exit"], WEB)
        assert set() == loaded(seen["exit"], REPORT)
