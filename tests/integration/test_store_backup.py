"""needlecare backup while the daemon writes; needlecare restore refusing a held store."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import json
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from needlecare_integrations.broker import MosquittoBroker
from needlecare_integrations.store import SCHEMA_VERSION
from support.daemon import DaemonFactory, wait_until
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.integration


def started(event_id: str) -> bytes:
    return json.dumps({"event_id": event_id, "type": "session_started"}).encode()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return list(conn.execute(sql).fetchall())


class TestBackup:
    def test_a_backup_taken_while_the_daemon_writes_is_whole_and_consistent(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
        tmp_path: Path,
    ) -> None:
        """Three backups mid-stream: each passes integrity_check, each event has its session."""
        daemon = daemon_factory(mosquitto).start()
        client = mqtt_client_factory(mosquitto)
        done = threading.Event()

        def publish() -> None:
            for n in range(300):
                client.publish(f"needlecare/device/pen{1 + n % 2}/event", started(f"ev{n}"))
            done.set()

        writer = threading.Thread(target=publish)
        writer.start()
        copies = []
        for n in range(3):
            wait_until(
                lambda m=n: daemon.count("events") >= 30 * (m + 1), timeout=60, what="progress"
            )
            target = tmp_path / f"copy{n}.db"
            result = daemon.cli("backup", str(target))
            assert f"schema {SCHEMA_VERSION}" in result.stdout
            copies.append(target)
        writer.join(120)
        assert done.is_set()
        counts = []
        for copy in copies:
            assert [("ok",)] == rows(copy, "PRAGMA integrity_check")
            # A session row per event: a torn copy would have one without the other.
            [(events, sessions)] = rows(
                copy, "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM sessions)"
            )
            assert events == sessions
            counts.append(events)
        assert counts == sorted(counts)
        assert counts[0] >= 30
        assert daemon.alive()
        refused = daemon.cli("backup", str(copies[0]), check=False)
        assert 4 == refused.returncode
        assert "exists already" in refused.stderr
        assert 0 == daemon.stop()


class TestRestore:
    def test_restore_refuses_while_the_daemon_runs_then_puts_the_backup_back(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
        tmp_path: Path,
    ) -> None:
        """Held store: refused, nothing touched. Stopped: restored, the old store kept aside."""
        daemon = daemon_factory(mosquitto).start()
        client = mqtt_client_factory(mosquitto)
        client.publish("needlecare/device/pen1/event", started("before"))
        wait_until(lambda: 1 == daemon.count("events"), what="the first event")
        saved = tmp_path / "saved.db"
        daemon.cli("backup", str(saved))
        client.publish("needlecare/device/pen1/event", started("after"))
        wait_until(lambda: 2 == daemon.count("events"), what="the second event")

        refused = daemon.cli("restore", str(saved), check=False)
        assert 6 == refused.returncode
        assert "holds the lock" in refused.stderr
        assert 2 == daemon.count("events")

        assert 0 == daemon.stop()
        result = daemon.cli("restore", str(saved))
        assert "previous store is kept at" in result.stdout
        [aside] = daemon.db.parent.glob("needlecare.db.before-restore-*")
        assert [("after",)] == rows(aside, "SELECT event_id FROM events WHERE event_id = 'after'")
        assert [("before",)] == rows(daemon.db, "SELECT event_id FROM events")

        daemon.start()
        client.publish("needlecare/device/pen1/event", started("again"))
        wait_until(lambda: 2 == daemon.count("events"), what="an event after the restore")
        assert 0 == daemon.stop()

    @pytest.mark.parametrize("problem", ["newer_schema", "corrupt", "not_a_store"])
    def test_a_bad_backup_is_refused_and_the_store_left_alone(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory, problem: str
    ) -> None:
        """Schema newer than this release, a damaged file, some other database: exit 4."""
        daemon = daemon_factory(mosquitto).start()
        assert 0 == daemon.stop()
        before = daemon.db.read_bytes()
        bad = daemon.workdir / "bad.db"
        daemon.cli("backup", str(bad))
        if problem == "newer_schema":
            with closing(sqlite3.connect(bad)) as conn:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        elif problem == "corrupt":
            data = bytearray(bad.read_bytes())
            data[4096 : 4096 * 3] = b"\xff" * (4096 * 2)
            bad.write_bytes(bytes(data))
        else:
            bad.unlink()
            with closing(sqlite3.connect(bad)) as conn:
                conn.execute("CREATE TABLE other (x)")
        result = daemon.cli("restore", str(bad), check=False)
        assert 4 == result.returncode, result.stdout + result.stderr
        expected = {
            "newer_schema": "newer than this release",
            "corrupt": "",
            "not_a_store": "not a needlecare store",
        }[problem]
        assert expected in result.stderr
        assert before == daemon.db.read_bytes()
        assert [] == list(daemon.db.parent.glob("needlecare.db.before-restore-*"))
