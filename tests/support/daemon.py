"""The daemon as a real process, configured against a test broker and a tmp store."""

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.store import SqliteStore, StoreError

TIMEOUT = 15.0

BASE_CONFIG: dict[str, Any] = {
    "profiles": {
        "alice": {"timezone": "Europe/Berlin"},
        "bob": {"timezone": "America/New_York"},
    },
    "devices": {"pen1": {"owner": "alice", "max_needle_depth_mm": 1.5}, "pen2": {"owner": "bob"}},
    "mirrors": {"hallway": {}},
    "logging": {"level": "DEBUG", "format": "json"},
}


def wait_until(
    predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str | Callable[[], str] = ""
) -> None:
    """Poll ``predicate`` until true; fail the test with ``what`` after ``timeout``.

    ``what`` may be a callable, evaluated at the failure, to report what was seen.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout:g} s waiting for {said or predicate}")
        time.sleep(0.02)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class DaemonProcess:
    """``needlecare run`` in a subprocess, with helpers to read its store and logs."""

    def __init__(self, workdir: Path, broker: MosquittoBroker, extra: dict[str, Any]) -> None:
        self.workdir = workdir
        self.db = workdir / "needlecare.db"
        self.log_path = workdir / "daemon.log"
        mqtt = {"host": broker.host, "port": broker.port}
        config = deep_merge(BASE_CONFIG, {"mqtt": mqtt, "store": {"path": str(self.db)}})
        self.config = copy.deepcopy(deep_merge(config, extra))
        self.config_path = workdir / "needlecare.yaml"
        self.write_config()
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        """Write ``self.config`` to the file the daemon reads at its next start."""
        self.config_path.write_text(yaml.safe_dump(self.config), encoding="utf-8")

    def start(self, *, wait_connected: bool = True) -> "DaemonProcess":
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "needlecare", "run", "-c", str(self.config_path)],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        if wait_connected:
            connections = self.log_count("mqtt_connected")
            wait_until(
                lambda: self.log_count("mqtt_connected") > connections or not self.alive(),
                what="the daemon to connect",
            )
            assert self.alive(), self.log_text()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = TIMEOUT) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(TIMEOUT)

    def wait_exit(self, timeout: float = TIMEOUT) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def log_text(self) -> str:
        return (
            self.log_path.read_text(encoding="utf-8", errors="replace")
            if self.log_path.exists()
            else ""
        )

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events

    def log_count(self, event: str) -> int:
        return sum(1 for entry in self.log_events() if entry.get("event") == event)

    def read(self, query: Callable[[SqliteStore], Any]) -> Any:
        """Run ``query`` on a fresh read-only view of the store."""
        store = SqliteStore.open_read_only(self.db)
        try:
            return query(store)
        finally:
            store.close()

    def count(self, table: str) -> int:
        try:
            return int(self.read(lambda s: s.count(table)))
        except StoreError:
            return 0

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a ``needlecare`` subcommand against this daemon's config."""
        return subprocess.run(
            [sys.executable, "-m", "needlecare", *args, "-c", str(self.config_path)],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            env=self.env,
            check=check,
            timeout=60,
        )


DaemonFactory = Callable[..., DaemonProcess]


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[DaemonFactory]:
    """Build (not start) daemons; any still running are killed at teardown."""
    made: list[DaemonProcess] = []

    def make(broker: MosquittoBroker, **extra: Any) -> DaemonProcess:
        workdir = tmp_path / f"daemon{len(made)}"
        workdir.mkdir()
        daemon = DaemonProcess(workdir, broker, extra)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        if daemon.alive():
            daemon.kill()
        print(f"--- daemon log {daemon.workdir}:\n{daemon.log_text()[-6000:]}")
