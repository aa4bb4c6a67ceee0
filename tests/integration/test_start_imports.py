"""The daemon's start path imports only the stacks its configuration enables.

``needlecare run`` runs in a subprocess of its own; a thread in that process waits
for the daemon's retained ``online`` and then writes the process's ``sys.modules``.
Home Assistant's client, the web stack and the report's plotting cost hundreds of
milliseconds and megabytes at start (docs/PERFORMANCE.md, fast start).
"""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import BASE_CONFIG, deep_merge

pytestmark = pytest.mark.integration

PROBE = """
import json, os, signal, sys, threading

config_path, out, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def watch():
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=mqtt.MQTTv5)

    def on_message(_client, _userdata, message):
        if message.payload == b"online":
            with open(out, "w", encoding="utf-8") as handle:
                json.dump(sorted(sys.modules), handle)
            os.kill(os.getpid(), signal.SIGTERM)

    client.on_connect = lambda c, *a: c.subscribe("needlecare/status", 1)
    client.on_message = on_message
    client.connect(host, port)
    client.loop_forever()


threading.Thread(target=watch, daemon=True).start()
from needlecare.cli.main import cli

cli(["run", "-c", config_path])
"""

# Top-level packages of the stacks that must wait until they are enabled.
HOME_ASSISTANT = {"homeassistant_api", "requests", "aiohttp"}
WEB = {"fastapi", "uvicorn", "starlette", "needlecare.web"}
REPORT = {"matplotlib", "needlecare.report"}


def started_modules(broker: MosquittoBroker, workdir: Path, **extra: Any) -> set[str]:
    store = {"store": {"path": str(workdir / "needlecare.db")}}
    mqtt = {"mqtt": {"host": broker.host, "port": broker.port}}
    config = deep_merge(deep_merge(BASE_CONFIG, {**store, **mqtt}), extra)
    config["logging"] = {"level": "INFO", "format": "json"}
    config_path = workdir / "needlecare.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = workdir / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config_path), str(out), broker.host, str(broker.port)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.exists(), f"the daemon never said online (exit {done.returncode}):\n{done.stderr}"
    assert 0 == done.returncode, done.stderr
    return set(json.loads(out.read_text(encoding="utf-8")))


def loaded(modules: set[str], stacks: set[str]) -> set[str]:
    return {m for m in modules for s in stacks if m == s or m.startswith(f"{s}.")}


class TestStartPath:
    def test_the_default_daemon_leaves_home_assistant_web_and_report_unimported(
        self, mosquitto: MosquittoBroker, tmp_path: Path
    ) -> None:
        """Nothing of those stacks is loaded by the time the retained online is out."""
        modules = started_modules(mosquitto, tmp_path)
        assert "needlecare.app.daemon" in modules
        assert set() == loaded(modules, HOME_ASSISTANT | WEB | REPORT)

    def test_enabling_the_web_app_does_load_its_stack(
        self, mosquitto: MosquittoBroker, tmp_path: Path
    ) -> None:
        """The control: the same probe sees a stack that is enabled."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        web = {"enabled": True, "host": "127.0.0.1", "port": port}
        modules = started_modules(mosquitto, tmp_path, web=web)
        assert {"fastapi", "needlecare.web"} <= loaded(modules, WEB)
        assert set() == loaded(modules, REPORT)
