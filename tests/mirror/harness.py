"""The pieces of a mirror test: MagicMirror as a process, the stack, the module's config."""

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonProcess, wait_until
from support.mosquitto import MqttConnection

MIRROR_ID = "hallway"
DAEMON_USER, DAEMON_PASSWORD = "needlecare", "daemon-secret"
# A password a URL would break on: credentials are options, never in the URL.
MIRROR_USER, MIRROR_PASSWORD = "hallway", "p@ss/w:rd#1?"
CONNECTED = f"mirror {MIRROR_ID}: connected"


@dataclass(frozen=True)
class Install:
    """Where tests/mirror/setup_magicmirror.sh put Node 24 and MagicMirror."""

    node: Path
    magicmirror: Path


def module_config(broker: MosquittoBroker) -> dict[str, Any]:
    """MMM-Needlecare's config, as deploy/magicmirror/MMM-Needlecare/README.md shows it."""
    return {
        "broker": f"mqtt://{broker.host}:{broker.port}",
        "username": MIRROR_USER,
        "password": MIRROR_PASSWORD,
        "baseTopic": "needlecare",
        "mirrorId": MIRROR_ID,
        "profiles": ["alice", "bob"],
        "snoozeMinutes": 30,
    }


class MagicMirror:
    """``node serveronly`` of the cached MagicMirror with a config file of this test.

    The config file lives in MagicMirror's own config/ folder (its start-up lint
    ignores files outside its tree), named after the port, and is removed at stop.
    """

    def __init__(self, install: Install, workdir: Path, port: int, module: dict[str, Any]):
        self.install = install
        self.port = port
        self.module = module
        self.config_path = install.magicmirror / "config" / f"needlecare-test-{port}.js"
        self.log_path = workdir / "magicmirror.log"
        self.process: subprocess.Popen[bytes] | None = None
        # MagicMirror's own language: the module's words that belong to no one follow it
        # (each entry's buttons follow its person's language, from the state).
        self.language = "en"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def write_config(self) -> None:
        config = {
            "address": "127.0.0.1",
            "port": self.port,
            "basePath": "/",
            "ipWhitelist": [],
            "language": self.language,
            "logLevel": ["INFO", "LOG", "WARN", "ERROR"],
            "modules": [
                {"module": "alert"},
                {"module": "MMM-Needlecare", "position": "bottom_bar", "config": self.module},
            ],
        }
        self.config_path.write_text(
            f"let config = {json.dumps(config, indent=2)};\n"
            'if (typeof module !== "undefined") { module.exports = config; }\n',
            encoding="utf-8",
        )

    def start(self) -> "MagicMirror":
        """Start it and wait until the page answers and the module is connected."""
        self.write_config()
        connected = self.log_text().count(CONNECTED)
        env = {
            **os.environ,
            "MM_CONFIG_FILE": str(self.config_path),
            # MagicMirror spawns `node` by name for its system report: the same Node 24.
            "PATH": f"{self.install.node.parent}:{os.environ.get('PATH', '')}",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.install.node), "serveronly"],
                cwd=self.install.magicmirror,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(
            lambda: self._answers() or not self.alive(), timeout=60, what="MagicMirror to answer"
        )
        assert self.alive(), self.log_text()[-4000:]
        wait_until(
            lambda: self.log_text().count(CONNECTED) > connected,
            timeout=30,
            what=lambda: f"MMM-Needlecare to connect:\n{self.log_text()[-3000:]}",
        )
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:  # noqa: S310
                return bool(200 == response.status)
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to MagicMirror's process group (it spawns helpers); kill if it hangs."""
        if self.process is not None and self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.config_path.unlink(missing_ok=True)

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@dataclass
class MirrorStack:
    """Everything a mirror test touches, started and wired together."""

    broker: MosquittoBroker
    daemon: DaemonProcess
    magicmirror: MagicMirror
    publisher: MqttConnection
    page: Page = field(init=False)
    console_errors: list[str] = field(default_factory=list)

    def open_page(self) -> None:
        self.page.goto(self.magicmirror.url)
        self.page.locator(".needlecare").wait_for(state="attached", timeout=30_000)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self.publisher.publish(topic, json.dumps(payload).encode())
