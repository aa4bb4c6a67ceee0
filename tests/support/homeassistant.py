"""A real Home Assistant core for the end-to-end tests, and fixtures that run one.

One instance serves the whole test session (start-up takes seconds), configured
against its own Mosquitto (``ha_mosquitto``). Tests may stop or restart it but must
leave it running. It runs from a separate virtualenv made (once per machine) by
``tests/e2e/install_homeassistant.sh``; see /work/shared/notes/real-home-assistant.md
for why it is configured the way it is.
"""

import fcntl
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.homeassistant_client import (
    HomeAssistantClient,
    HomeAssistantError,
    HomeAssistantHttpError,
    http_request,
    wait_for,
)
from support.homeassistant_config import NOTIFY_FILE, write_config_dir
from support.homeassistant_setup import onboard, setup_mqtt
from support.mosquitto import free_port, running_broker

__all__ = ["HomeAssistant", "HomeAssistantError"]

INSTALL_SCRIPT = Path(__file__).parents[1] / "e2e" / "install_homeassistant.sh"
INSTALL_TIMEOUT = 1200.0  # a first install takes minutes
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
WAIT_TIMEOUT = 15.0
LOG_NAME = "hass.out"
TOKEN_NAME = "needlecare-test-token"
_NOTIFY_HEADER_LINES = 2  # "Home Assistant notifications (Log started: ...)", dashes
T = TypeVar("T")


class HomeAssistant(HomeAssistantClient):
    """``hass -c CONFIG_DIR --skip-pip`` on 127.0.0.1:port, onboarded, with a token."""

    def __init__(self, *, venv: Path, config_dir: Path, port: int) -> None:
        super().__init__(f"http://127.0.0.1:{port}", "")
        self.venv = venv
        self.config_dir = config_dir
        self.port = port
        self.log_path = config_dir / LOG_NAME
        self.token_path = config_dir / TOKEN_NAME
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"HomeAssistant({self.url}, {self.config_dir})"

    @property
    def is_running(self) -> bool:
        """Whether the hass process has been started and has not exited."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start hass and wait until it runs; onboard and make a token the first time."""
        if self.is_running:
            raise HomeAssistantError(f"{self!r} is already running")
        write_config_dir(self.config_dir, self.port)
        command = [str(self.venv / "bin" / "hass"), "-c", str(self.config_dir), "--skip-pip"]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        self._wait(self._onboarding_answers, deadline, "GET /api/onboarding to answer")
        if not self.token_path.exists():
            self.token_path.write_text(onboard(self.url), encoding="utf-8")
        self._token = self.token_path.read_text(encoding="utf-8")
        self._wait(self._core_running, deadline, "the core to be RUNNING")
        if self.config_entries("mqtt"):  # set up before a restart: wait until it is back
            self._wait(self._mqtt_loaded, deadline, "the MQTT entry to load")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM and wait for a clean exit; SIGKILL if it takes longer than timeout."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL hass, as a crash would."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Stop cleanly and start again with the same configuration and token."""
        self.stop()
        self.start(timeout)

    def setup_mqtt(self, broker_host: str, broker_port: int) -> str:
        """Create the MQTT entry with discovery under ``homeassistant``; its entry id."""
        return setup_mqtt(self, broker_host, broker_port, self._log_context)

    def notify_file_lines(self) -> list[str]:
        """The messages ``notify.test_phone`` wrote, oldest first (titles are not kept)."""
        path = self.config_dir / NOTIFY_FILE
        if not path.exists():
            return []
        return path.read_text(encoding="utf-8").splitlines()[_NOTIFY_HEADER_LINES:]

    def wait_for(self, probe: Callable[[], T], timeout: float = WAIT_TIMEOUT, what: str = "") -> T:
        """Poll probe until it returns something truthy, and return that; fail after timeout."""
        try:
            return wait_for(probe, timeout, what or repr(probe), self._log_context)
        except HomeAssistantError as error:
            pytest.fail(str(error), pytrace=False)

    def log_tail(self, lines: int = 40) -> str:
        """The end of hass's stdout and stderr (warnings and errors, across restarts)."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _log_context(self) -> str:
        return f"\n--- {self.log_path} (tail):\n{self.log_tail()}"

    def _wait(self, probe: Callable[[], bool], deadline: float, what: str) -> None:
        def ready() -> bool:
            if not self.is_running:
                raise HomeAssistantError(f"hass exited while waiting for {what}")
            return probe()

        remaining = max(deadline - time.monotonic(), 0.0)
        try:
            wait_for(ready, remaining, what)
        except HomeAssistantError as error:
            raise HomeAssistantError(f"{error}{self._log_context()}") from error

    def _onboarding_answers(self) -> bool:
        try:
            http_request("GET", f"{self.url}/api/onboarding", timeout=2.0)
        except HomeAssistantHttpError:
            return False
        except OSError:  # not listening yet, or reset while starting
            return False
        return True

    def _core_running(self) -> bool:
        return bool(self.rest("GET", "/api/config").get("state") == "RUNNING")

    def _mqtt_loaded(self) -> bool:
        return [entry["state"] for entry in self.config_entries("mqtt")] == ["loaded"]


def homeassistant_venv() -> Path:
    """The cached Home Assistant venv, installed first if need be (never twice at once)."""
    lock_path = Path(tempfile.gettempdir()) / "needlecare-homeassistant-install.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions must not install into one venv
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        pytest.fail(
            f"{INSTALL_SCRIPT} failed ({result.returncode}):\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def ha_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """The Mosquitto that the session's Home Assistant is connected to."""
    yield from running_broker(tmp_path_factory.mktemp("ha-broker"), port=free_port())


@pytest.fixture(scope="session")
def homeassistant(
    tmp_path_factory: pytest.TempPathFactory, ha_mosquitto: MosquittoBroker
) -> Iterator[HomeAssistant]:
    """A running, onboarded Home Assistant with MQTT discovery on ``ha_mosquitto``.

    Fails (never skips) with hass's log if it cannot be installed or does not come up.
    """
    config_dir = tmp_path_factory.mktemp("homeassistant")
    hass = HomeAssistant(venv=homeassistant_venv(), config_dir=config_dir, port=free_port())
    try:
        _bring_up(hass, ha_mosquitto)
        yield hass
    finally:
        hass.stop()
        print(f"{hass!r} log tail:\n{hass.log_tail()}")  # shown when a test fails


def _bring_up(hass: HomeAssistant, broker: MosquittoBroker) -> None:
    try:
        hass.start()
        hass.setup_mqtt(broker.host, broker.port)
    except (HomeAssistantError, OSError) as error:
        tail = "" if "(tail):" in str(error) else hass._log_context()
        pytest.fail(f"Home Assistant did not come up: {error}{tail}", pytrace=False)
