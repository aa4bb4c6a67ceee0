"""The mirror for real: MagicMirror² 2.36.0 with MMM-Needlecare, a real Mosquitto, the
daemon as a process, and Debian's Chromium through Playwright.

MagicMirror and Node 24 come from tests/mirror/setup_magicmirror.sh (cached under
~/.cache/needlecare), Chromium from tests/setup_browser.sh.
"""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, sync_playwright

from mirror.harness import (
    DAEMON_PASSWORD,
    DAEMON_USER,
    MIRROR_ID,
    MIRROR_PASSWORD,
    MIRROR_USER,
    Install,
    MagicMirror,
    MirrorStack,
    module_config,
)
from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory
from support.mosquitto import (
    MqttClientFactory,
    TlsBroker,
    free_ports,
    make_password_file,
    running_broker,
)

TESTS = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Awake all day but one minute, so quiet hours never hold anything back in a run.
AWAKE = {"start": "03:00", "end": "03:01"}
PROFILES = {
    "alice": {"timezone": "Europe/Berlin", "display_name": "Alice", "quiet_hours": AWAKE},
    "bob": {"timezone": "America/New_York", "display_name": "Bob", "quiet_hours": AWAKE},
}
MIRRORS = {MIRROR_ID: {"profiles": ["alice", "bob"]}}


def _run_setup(script: Path) -> str:
    result = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=1800, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{script.name} failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return result.stdout


@pytest.fixture(scope="session")
def mirror_install() -> Install:
    """MagicMirror 2.36.0 with MMM-Needlecare, and Node 24 (installed or from the cache)."""
    lines = _run_setup(TESTS / "mirror" / "setup_magicmirror.sh").splitlines()
    found = dict(line.split("=", 1) for line in lines if "=" in line)
    return Install(Path(found["NODE"]), Path(found["MAGICMIRROR"]))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for one test module: Playwright's sync API allows
    one running instance at a time, and other modules (tests/web) start their own."""
    _run_setup(TESTS / "setup_browser.sh")
    executable = shutil.which("chromium")
    assert executable is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker with persistence that knows two accounts: the daemon and the mirror."""
    password_file = make_password_file(tmp_path / "passwd", DAEMON_USER, DAEMON_PASSWORD)
    subprocess.run(
        ["mosquitto_passwd", "-b", str(password_file), MIRROR_USER, MIRROR_PASSWORD],
        check=True,
        capture_output=True,
    )
    (port,) = free_ports(1)
    yield from running_broker(tmp_path / "broker", port=port, password_file=password_file)


@pytest.fixture
def stack(  # noqa: PLR0917 (pytest passes fixtures by name)
    tmp_path: Path,
    mirror_install: Install,
    browser: Browser,
    auth_broker: MosquittoBroker,
    daemon_factory: DaemonFactory,
    mqtt_client_factory: MqttClientFactory,
) -> Iterator[MirrorStack]:
    """Broker with accounts, daemon, MagicMirror and a page on it, torn down in reverse."""
    credentials = {"username": DAEMON_USER, "password": DAEMON_PASSWORD}
    daemon = daemon_factory(
        auth_broker, mqtt=credentials, profiles=PROFILES, mirrors=MIRRORS
    ).start()
    publisher = mqtt_client_factory(auth_broker, **credentials)
    magicmirror = MagicMirror(
        mirror_install, tmp_path, free_ports(1)[0], module_config(auth_broker)
    )
    yield from _running(browser, MirrorStack(auth_broker, daemon, magicmirror, publisher))


@pytest.fixture
def tls_stack(  # noqa: PLR0917 (pytest passes fixtures by name)
    tmp_path: Path,
    mirror_install: Install,
    browser: Browser,
    mosquitto_tls: TlsBroker,
    daemon_factory: DaemonFactory,
    mqtt_client_factory: MqttClientFactory,
) -> Iterator[MirrorStack]:
    """The same with the module on the broker's TLS listener (mqtts://, a private CA and
    a client certificate); the daemon uses the plain one."""
    broker = mosquitto_tls.broker
    daemon = daemon_factory(broker, profiles=PROFILES, mirrors=MIRRORS).start()
    certs = mosquitto_tls.certs
    module = {
        **module_config(broker),
        "broker": f"mqtts://localhost:{mosquitto_tls.tls_port}",
        "username": None,
        "password": None,
        "ca": str(certs.ca_cert),
        "cert": str(certs.client_cert),
        "key": str(certs.client_key),
    }
    magicmirror = MagicMirror(mirror_install, tmp_path, free_ports(1)[0], module)
    publisher = mqtt_client_factory(broker)
    yield from _running(browser, MirrorStack(broker, daemon, magicmirror, publisher))


def _running(browser: Browser, stack: MirrorStack) -> Iterator[MirrorStack]:
    """Start MagicMirror, open a page that records console errors; close both after."""
    context = browser.new_context(viewport={"width": 1080, "height": 1200})
    try:
        stack.magicmirror.start()
        stack.page = context.new_page()
        stack.page.on("console", lambda message: _note_error(stack, message))
        stack.page.on("pageerror", lambda error: stack.console_errors.append(f"{error}"))
        stack.open_page()
        yield stack
    finally:
        context.close()
        stack.magicmirror.stop()
        print(f"--- MagicMirror log:\n{stack.magicmirror.log_text()[-6000:]}")


def _note_error(stack: MirrorStack, message: ConsoleMessage) -> None:
    if message.type == "error":
        stack.console_errors.append(message.text)
