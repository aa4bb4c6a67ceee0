"""Log lines: secrets masked; a turn's lines held and written together."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from needlecare import logs


class CountingFile(io.StringIO):
    """Counts writes: one per line, or one per held batch."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def out(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingFile]:
    file = CountingFile()
    monkeypatch.setattr("sys.stderr", file)
    logs.configure_logging(level="INFO", fmt="json", secrets=["s3cret-pass"])
    yield file
    structlog.reset_defaults()
    monkeypatch.setattr(logs, "_sink", None)


def lines(file: CountingFile) -> list[dict[str, Any]]:
    return [json.loads(line) for line in file.getvalue().splitlines()]


class TestLogs:
    def test_a_line_outside_a_turn_is_written_at_once(self, out: CountingFile) -> None:
        structlog.get_logger().info("mqtt_connected", host="broker")
        assert ["mqtt_connected"] == [line["event"] for line in lines(out)]
        assert 1 == out.writes

    def test_a_turns_lines_are_held_then_written_in_one_go(self, out: CountingFile) -> None:
        log = structlog.get_logger()
        with logs.held_lines():
            log.info("session_recorded")
            log.debug("dropped_below_the_level")
            log.info("reminder_delivered")
            assert "" == out.getvalue()
        assert ["session_recorded", "reminder_delivered"] == [e["event"] for e in lines(out)]
        assert 1 == out.writes

    def test_other_threads_are_not_held(self, out: CountingFile) -> None:
        log = structlog.get_logger()
        with logs.held_lines():
            log.info("in_the_turn")
            thread = threading.Thread(target=lambda: log.warning("mqtt_disconnected"))
            thread.start()
            thread.join()
            assert ["mqtt_disconnected"] == [line["event"] for line in lines(out)]
        assert ["mqtt_disconnected", "in_the_turn"] == [line["event"] for line in lines(out)]

    def test_held_lines_are_written_when_the_turn_fails(self, out: CountingFile) -> None:
        def failing_turn() -> None:
            with logs.held_lines():
                structlog.get_logger().error("turn_failed", error="boom")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            failing_turn()
        assert ["turn_failed"] == [line["event"] for line in lines(out)]

    def test_secrets_are_masked(self, out: CountingFile) -> None:
        structlog.get_logger().error("refused", error="password s3cret-pass rejected")
        assert "s3cret-pass" not in out.getvalue()
        assert f"password {logs.REDACTED} rejected" == lines(out)[0]["error"]
