"""One daemon per store: the OS lock beside the SQLite file, with real daemons and Mosquitto."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.store.lock import (
    StoreLock,
    StoreLockedError,
    holder_pid,
    is_held,
    lock_path,
)
from support.daemon import DaemonFactory
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.integration

STORE_LOCKED = 6

HOLD = """
import sys, time
from pathlib import Path
from needlecare_integrations.store.lock import StoreLock
StoreLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


@contextmanager
def holder(store: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that takes the lock and keeps it until killed."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert "held\n" == process.stdout.readline()
        try:
            yield process
        finally:
            process.kill()


def retained_status(factory: MqttClientFactory, broker: MosquittoBroker) -> str:
    client = factory(broker)
    client.subscribe("needlecare/status")
    [message] = client.received.wait_for_count(1)
    return message.payload.decode()


class TestStoreLock:
    def test_lock_file_sits_beside_the_store(self, tmp_path: Path) -> None:
        """The lock of needlecare.db is needlecare.db.lock in the same folder."""
        assert tmp_path / "needlecare.db.lock" == lock_path(tmp_path / "needlecare.db")

    def test_second_holder_is_refused_with_the_first_ones_pid(self, tmp_path: Path) -> None:
        """While one process holds the lock, acquiring it elsewhere raises, naming that pid."""
        store = tmp_path / "needlecare.db"
        with holder(store) as other:
            with pytest.raises(StoreLockedError) as refused:
                StoreLock(store).acquire()
            assert (other.pid, lock_path(store), store) == (
                refused.value.pid,
                refused.value.lock,
                refused.value.store,
            )
            assert str(other.pid) in str(refused.value)
            assert (True, other.pid) == (is_held(store), holder_pid(store))

    def test_a_killed_holder_releases_the_lock(self, tmp_path: Path) -> None:
        """SIGKILL leaves the file behind but not the lock: the next process takes it."""
        store = tmp_path / "needlecare.db"
        with holder(store) as other:
            other.send_signal(signal.SIGKILL)
            other.wait()
        assert lock_path(store).exists()
        assert (False, None) == (is_held(store), holder_pid(store))
        with StoreLock(store) as lock:
            assert lock.held
            assert (True, os.getpid()) == (is_held(store), holder_pid(store))
        assert not is_held(store)

    def test_no_lock_file_means_not_held(self, tmp_path: Path) -> None:
        """A store no daemon ever ran on is not held, and asking creates nothing."""
        store = tmp_path / "needlecare.db"
        assert (False, None) == (is_held(store), holder_pid(store))
        assert not lock_path(store).exists()


class TestSecondDaemon:
    def test_second_run_on_the_same_store_exits_6_without_touching_the_broker(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """The second daemon names the lock, the store and the first pid, and exits 6 at once.

        The first keeps its MQTT session (never disconnected) and its status stays online;
        the broker never sees a second connection with the shared client id.
        """
        first = daemon_factory(mosquitto).start()
        second = daemon_factory(mosquitto, store={"path": str(first.db)})
        second.db = first.db
        second.start(wait_connected=False)
        assert STORE_LOCKED == second.wait_exit()
        [locked] = [e for e in second.log_events() if e.get("event") == "store_locked"]
        assert first.process is not None
        assert (str(first.db), str(lock_path(first.db)), first.process.pid) == (
            locked["store"],
            locked["lock"],
            locked["pid"],
        )
        assert str(first.process.pid) in locked["error"]
        assert [] == [e for e in second.log_events() if str(e.get("event", "")).startswith("mqtt")]
        assert first.alive()
        assert "online" == retained_status(mqtt_client_factory, mosquitto)
        assert 0 == first.log_count("mqtt_disconnected")
        connects = mosquitto.log_path.read_text(encoding="utf-8").count("New client connected")
        assert 2 == connects  # the first daemon and the status reader above, nobody else

    def test_after_the_first_daemon_dies_a_new_one_starts(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """A crashed daemon leaves no stale lock: the next run on the store starts normally."""
        first = daemon_factory(mosquitto).start()
        first.kill()
        first.start()
        assert first.process is not None
        assert first.alive()
        assert first.process.pid == holder_pid(first.db)
