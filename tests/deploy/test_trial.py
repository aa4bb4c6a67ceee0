"""deploy/trial.sh and its broker: runtime dependencies only, a quiet unprivileged Mosquitto."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support.daemon import wait_until
from support.deploy import DEPLOY, ROOT
from support.mosquitto import free_port

pytestmark = pytest.mark.integration

IDLE_S = 3.0  # Mosquitto used to write "Saving in-memory database" once a second


def pip_calls(extras: str | None, venv: Path) -> list[str]:
    """What bootstrap.sh asks pip to install, with a stand-in pip that only records."""
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    record = venv / "pip-args"
    pip = venv / "bin" / "pip"
    pip.write_text(f'#!/bin/sh\necho "$*" >> {record}\n', encoding="utf-8")
    pip.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "NEEDLECARE_VENV": str(venv)}
    if extras is not None:
        env["NEEDLECARE_EXTRAS"] = extras
    subprocess.run(
        ["bash", "-c", f"source {DEPLOY / 'bootstrap.sh'}"], env=env, check=True, timeout=120
    )
    return record.read_text(encoding="utf-8").splitlines()


class TestRuntimeOnly:
    def test_trial_asks_for_no_extras_before_bootstrapping(self) -> None:
        """trial.sh sets NEEDLECARE_EXTRAS empty (unless given) before it sources bootstrap.sh."""
        text = (DEPLOY / "trial.sh").read_text(encoding="utf-8")
        assert text.index('export NEEDLECARE_EXTRAS="${NEEDLECARE_EXTRAS-}"') < text.index(
            "bootstrap.sh"
        )

    def test_bootstrap_installs_the_package_alone_without_extras(self, tmp_path: Path) -> None:
        """NEEDLECARE_EXTRAS="" installs the package and its runtime dependencies only."""
        assert f"install -q -e {ROOT}" == pip_calls("", tmp_path / "venv")[-1]

    def test_bootstrap_installs_the_test_extra_by_default(self, tmp_path: Path) -> None:
        """tests/run.sh (no variable) still gets the test suite's dependencies."""
        assert f"install -q -e {ROOT}[test]" == pip_calls(None, tmp_path / "venv")[-1]


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A folder every user can reach (pytest's own tmp folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="needlecare-trial-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def process_user(pid: int) -> str:
    uid = Path(f"/proc/{pid}").stat().st_uid
    return pwd.getpwuid(uid).pw_name


def settled(path: Path) -> bool:
    """Whether ``path`` stopped growing for a second and a half."""
    size = path.stat().st_size
    time.sleep(1.5)
    return size == path.stat().st_size


def broker_pid(config_path: Path) -> int | None:
    listing = subprocess.run(  # -ww: whole command lines, whatever COLUMNS says
        ["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    )
    for line in listing.stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        if "mosquitto -c " in args and args.endswith(str(config_path)):
            return int(pid)
    return None


class TestTrialBroker:
    def test_trial_broker_runs_unprivileged_and_its_log_stays_quiet(
        self, reachable_dir: Path
    ) -> None:
        """needlecare run --broker: Mosquitto never runs as root (started by root, it runs
        as "mosquitto"), the daemon connects, and an idle broker writes nothing to its log
        (it used to write an autosave line every second)."""
        store = reachable_dir / "needlecare.db"
        config = {
            "mqtt": {"host": "127.0.0.1", "port": free_port()},
            "store": {"path": str(store)},
            "profiles": {"alice": {"timezone": "Europe/Berlin"}},
            "logging": {"format": "json"},
        }
        config_path = reachable_dir / "needlecare.yaml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        log = reachable_dir / "daemon.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "needlecare", "run", "-c", str(config_path), "--broker"],
                cwd=reachable_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(lambda: "mqtt_connected" in log.read_text(), what="the daemon to connect")
            broker_dir = reachable_dir / "needlecare-broker"
            pid = broker_pid(broker_dir / "mosquitto.conf")
            assert pid is not None
            expected = "mosquitto" if os.geteuid() == 0 else process_user(os.getpid())
            assert (expected, expected) == (process_user(pid), broker_dir.owner())
            broker_log = broker_dir / "mosquitto.log"
            wait_until(lambda: settled(broker_log), what="the start-up's log lines to end")
            before = broker_log.read_text(encoding="utf-8")
            time.sleep(IDLE_S)  # an idle spell to look at the log after, not a timing assertion
            # A save after a change (the daemon's own retained publishes) is fine; the old
            # per-second autosave would have written a line every second of the spell.
            spell = broker_log.read_text(encoding="utf-8")[len(before) :]
            assert spell.count("\n") <= 1, spell
        finally:
            daemon.terminate()
            code = daemon.wait(30)
        assert 0 == code, log.read_text()
