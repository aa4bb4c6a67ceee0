"""Long exports show progress on a terminal, and never in pipes."""

import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from needlecare.domain.sessions import Session, SessionStatus
from needlecare_integrations.store import SqliteStore

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 20, 0, tzinfo=UTC)


def seeded(tmp_path: Path, sessions: int) -> Path:
    db = tmp_path / "needlecare.db"
    store = SqliteStore.open(db, now=T0)
    with store.transaction():
        for n in range(sessions):
            start = T0 + timedelta(days=30 * n)
            store.save_session(
                Session(
                    id=f"ses_{n}", profile="alice", device_id="pen1", setting="home",
                    status=SessionStatus.COMPLETED, started_at=start,
                    ended_at=start + timedelta(minutes=15), last_seen_at=start,
                )
            )  # fmt: skip
    store.close()
    config = tmp_path / "needlecare.yaml"
    config.write_text(f"store: {{path: {db}}}\nprofiles: {{alice: {{timezone: Europe/Berlin}}}}\n")
    return config


class TestProgress:
    def test_export_shows_a_progress_bar_on_a_terminal(self, tmp_path: Path) -> None:
        """With stderr on a terminal, exporting many rows draws a bar; stdout stays clean JSON."""
        config = seeded(tmp_path, 500)
        leader, follower = pty.openpty()
        out = tmp_path / "export.json"
        process = subprocess.run(
            [sys.executable, "-m", "needlecare", "export", "-c", str(config), "--out", str(out)],
            stderr=follower,
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=60,
        )
        os.close(follower)
        screen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        os.close(leader)
        assert 0 == process.returncode
        assert b"sessions" in screen
        assert b"100%" in screen
        assert out.read_text(encoding="utf-8").startswith("{")

    def test_no_progress_in_a_pipe(self, tmp_path: Path) -> None:
        """Piped, stderr carries no bar."""
        config = seeded(tmp_path, 500)
        result = subprocess.run(
            [sys.executable, "-m", "needlecare", "export", "-c", str(config)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert "" == result.stderr
        assert result.stdout.startswith("{")
