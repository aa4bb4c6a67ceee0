"""A real Home Assistant core for the end-to-end tests, and fixtures that run one.

Every e2e test runs once per release in ``HA_VERSIONS``: the oldest release still
verified and a current one (``NEEDLECARE_HA_VERSIONS=2025.4.4,...`` picks others).
One instance per release serves the session (start-up takes seconds), configured
against its own Mosquitto (``ha_mosquitto``); pytest finishes one release's tests
before starting the next. Tests may stop or restart it but must leave it running.

Each release runs from its own virtualenv, made once per machine by
``tests/e2e/install_homeassistant.sh`` with the requirements of every integration
it loads. It starts *with* its requirement check but without a package index
(``PIP_NO_INDEX``, ``UV_OFFLINE``): a requirement the venv lacks is logged as
"Unable to install package" instead of being downloaded, and a test fails on it.
"""

import contextlib
import fcntl
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, DaemonProcess
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
# 2024.3.3: the newest release on Python 3.11; 2025.4.4: a current one (Python 3.13).
# deploy/compose.yaml pins the newest, the add-on declares the oldest as its minimum.
TESTED_HA_VERSIONS = ("2024.3.3", "2025.4.4")
HA_VERSIONS = tuple(
    version.strip()
    for version in os.environ.get("NEEDLECARE_HA_VERSIONS", ",".join(TESTED_HA_VERSIONS)).split(",")
    if version.strip()
)
# No package index while Home Assistant runs: missing requirements fail loudly.
OFFLINE_ENV = {"PIP_NO_INDEX": "1", "UV_OFFLINE": "1", "UV_NO_CACHE": "1"}
UNABLE_TO_INSTALL = "Unable to install package"
_WALL_TIMES: dict[str, float] = {}  # release -> seconds its tests took, set-up to tear-down
INSTALL_TIMEOUT = 1200.0  # a first install takes minutes
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
WAIT_TIMEOUT = 15.0
LOG_NAME = "hass.out"
TOKEN_NAME = "needlecare-test-token"
_RECOVERY_MODE = "Activating recovery mode"  # logged when an always-loaded integration failed
_ERROR = " ERROR ("  # the level in "2024-03-01 12:00:00.000 ERROR (MainThread) [...]"
_ERROR_LINES = 12
_POLL_SECONDS = 0.05
T = TypeVar("T")


class HomeAssistant(HomeAssistantClient):
    """``hass -c CONFIG_DIR --skip-pip`` on 127.0.0.1:port, onboarded, with a token."""

    def __init__(self, *, venv: Path, config_dir: Path, port: int, version: str = "") -> None:
        super().__init__(f"http://127.0.0.1:{port}", "")
        self.version = version
        self.venv = venv
        self.config_dir = config_dir
        self.port = port
        self.log_path = config_dir / LOG_NAME
        self.token_path = config_dir / TOKEN_NAME
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def __repr__(self) -> str:
        return f"HomeAssistant({self.version}, {self.url}, {self.config_dir})"

    @property
    def release(self) -> tuple[int, int]:
        """(year, month) of the running release, e.g. (2025, 4)."""
        year, month, *_ = (int(part) for part in self.version.split("."))
        return year, month

    @property
    def is_running(self) -> bool:
        """Whether the hass process has been started and has not exited."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start hass and wait until it runs; onboard and make a token the first time.

        Raises HomeAssistantError, ending with hass's log, if it is not up in time.
        """
        if self.is_running:
            raise HomeAssistantError(f"{self!r} is already running")
        write_config_dir(self.config_dir, self.port)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [str(self.venv / "bin" / "hass"), "-c", str(self.config_dir)]
        env = {**os.environ, **OFFLINE_ENV}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        with self._failures_with_log("starting Home Assistant"):
            self._wait_until_up(time.monotonic() + timeout)

    def _wait_until_up(self, deadline: float) -> None:
        self._wait(self._server_answers, deadline, "the HTTP server to answer")
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
        with self._failures_with_log("setting up MQTT"):
            return setup_mqtt(self, broker_host, broker_port)

    def notify_file_lines(self) -> list[str]:
        """The messages ``notify.test_phone`` wrote, oldest first (titles are not kept)."""
        path = self.config_dir / NOTIFY_FILE
        if not path.exists():
            return []
        return path.read_text(encoding="utf-8").splitlines()

    def wait_for(
        self, probe: Callable[[], T | None], timeout: float = WAIT_TIMEOUT, what: str = ""
    ) -> T:
        """Poll probe until it returns something truthy, and return that; fail after timeout."""
        deadline = time.monotonic() + timeout
        while not (value := probe()):
            if time.monotonic() > deadline:
                what = what or repr(probe)
                pytest.fail(
                    f"timed out after {timeout:g} s waiting for {what}{self._log_context()}"
                )
            time.sleep(_POLL_SECONDS)
        return value

    def log_text(self) -> str:
        """Everything hass logged in this session, across restarts."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        """The end of hass's stdout and stderr (warnings and errors, across restarts)."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _log_since_start(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode("utf-8", "replace")

    def _log_context(self) -> str:
        return f"\n--- {self.log_path} (tail):\n{self.log_tail()}"

    @contextlib.contextmanager
    def _failures_with_log(self, action: str) -> Iterator[None]:
        try:
            yield
        except (HomeAssistantError, OSError) as error:
            raise HomeAssistantError(f"{action}: {error}{self._log_context()}") from error

    def _wait(self, probe: Callable[[], bool], deadline: float, what: str) -> None:
        def ready() -> bool:
            if not self.is_running:
                raise HomeAssistantError(f"hass exited while waiting for {what}")
            return probe()

        wait_for(ready, max(deadline - time.monotonic(), 0.0), what)

    def _server_answers(self) -> bool:
        """Any HTTP answer: /api/onboarding exists only until onboarding is done."""
        log = self._log_since_start()
        if _RECOVERY_MODE in log:
            errors = [line for line in log.splitlines() if _ERROR in line]
            raise HomeAssistantError(
                "hass started in recovery mode, because:\n" + "\n".join(errors[:_ERROR_LINES])
            )
        try:
            http_request("GET", f"{self.url}/api/onboarding", timeout=2.0)
        except HomeAssistantHttpError:
            return True
        except OSError:  # not listening yet
            return False
        return True

    def _core_running(self) -> bool:
        return bool(self.rest("GET", "/api/config").get("state") == "RUNNING")

    def _mqtt_loaded(self) -> bool:
        return [entry["state"] for entry in self.config_entries("mqtt")] == ["loaded"]


def one_profile_daemon(
    daemon_factory: DaemonFactory,
    broker: MosquittoBroker,
    hass: HomeAssistant,
    profile: str,
    *,
    entities: dict[str, str],
    **sections: Any,
) -> DaemonProcess:
    """A started daemon calling ``hass`` (with ``entities``), for one profile and its pen.

    The pen is ``pen_<profile>``; the client id is the profile's, so that tests sharing
    the session's broker never take each other's MQTT session.
    """
    return daemon_factory(
        broker,
        mqtt={"client_id": f"needlecare-{profile}", "session_expiry_s": 60},
        homeassistant={"url": hass.url, "token": hass.token, **entities},
        profiles={profile: {"timezone": "Europe/Berlin"}},
        devices={f"pen_{profile}": {"owner": profile}},
        **sections,
    ).start()


def homeassistant_venv(version: str) -> Path:
    """The cached venv of one release, installed first if need be (never twice at once)."""
    lock_path = Path(tempfile.gettempdir()) / f"needlecare-homeassistant-{version}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions must not install into one venv
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT), version],
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


@pytest.fixture(scope="session", params=HA_VERSIONS, ids=lambda version: f"ha{version}")
def ha_version(request: pytest.FixtureRequest) -> str:
    """The Home Assistant release this test runs against."""
    version: str = request.param
    return version


@pytest.fixture(scope="session")
def ha_mosquitto(
    tmp_path_factory: pytest.TempPathFactory, ha_version: str
) -> Iterator[MosquittoBroker]:
    """The Mosquitto that the session's Home Assistant (of that release) is connected to."""
    yield from running_broker(tmp_path_factory.mktemp(f"ha-broker-{ha_version}"), port=free_port())


@pytest.fixture(scope="session")
def homeassistant(
    tmp_path_factory: pytest.TempPathFactory, ha_mosquitto: MosquittoBroker, ha_version: str
) -> Iterator[HomeAssistant]:
    """A running, onboarded Home Assistant with MQTT discovery on ``ha_mosquitto``.

    Fails (never skips) with hass's log if it cannot be installed or does not come up.
    Prints the wall time of the release's tests (set-up to tear-down) at the end.
    """
    began = time.monotonic()
    config_dir = tmp_path_factory.mktemp(f"homeassistant-{ha_version}")
    hass = HomeAssistant(
        venv=homeassistant_venv(ha_version),
        config_dir=config_dir,
        port=free_port(),
        version=ha_version,
    )
    try:
        _bring_up(hass, ha_mosquitto)
        yield hass
    finally:
        hass.stop()
        print(f"{hass!r} log tail:\n{hass.log_tail()}")  # shown when a test fails
        _record_wall_time(tmp_path_factory, ha_version, time.monotonic() - began)


def _record_wall_time(factory: pytest.TempPathFactory, version: str, seconds: float) -> None:
    """Kept for the end of the run (pytest_terminal_summary) and appended to a file in
    the cache directory, so that the figures outlive pytest's rotated temp dirs."""
    _WALL_TIMES[version] = seconds
    line = f"Home Assistant {version}: e2e wall time {seconds:.0f} s (set-up to tear-down)"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "needlecare"
    with contextlib.suppress(OSError):
        cache.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with (cache / "homeassistant-e2e-wall-times.txt").open("a") as out:
            out.write(f"{stamp} {line}\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per Home Assistant release tested in this run: its wall time."""
    for version, seconds in _WALL_TIMES.items():
        terminalreporter.write_line(
            f"Home Assistant {version}: e2e wall time {seconds:.0f} s (set-up to tear-down)"
        )


def _bring_up(hass: HomeAssistant, broker: MosquittoBroker) -> None:
    """Start hass and connect it to broker; fail the session's e2e tests if that fails."""
    failure: HomeAssistantError | None = None
    try:
        hass.start()
        hass.setup_mqtt(broker.host, broker.port)
    except HomeAssistantError as error:
        failure = error
    if failure is not None:  # failed out here, so that pytest shows no exception chain
        pytest.fail(f"Home Assistant did not come up: {failure}", pytrace=False)
