"""Log lines: secrets masked; a turn's lines held and written together; the start's
lines held until logging is configured, then written as they were logged."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from needlecare import logs
from needlecare.clock import SystemClock


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


class Err:
    """What was written to stderr so far (pytest's capture: the sink is made when configured)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys, self._text = capsys, ""

    def getvalue(self) -> str:
        self._text += self._capsys.readouterr().err
        return self._text


def lines(file: CountingFile | Err) -> list[dict[str, Any]]:
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

    def test_a_turns_lines_are_rendered_after_it_in_order_with_their_own_time(
        self, out: CountingFile
    ) -> None:
        """get_logger()'s lines are kept as logged, and go through structlog when it ends."""
        rendered: list[str] = []

        def spy(logger: Any, method: str, event: Any) -> Any:
            rendered.append(event["event"])
            return event

        structlog.configure(processors=[spy, *structlog.get_config()["processors"]])
        log = logs.get_logger("needlecare.app.core")
        with logs.held_lines():
            before = SystemClock().now()
            log.info("session_recorded", session_id="s1")
            log.debug("dropped_below_the_level")
            try:
                raise RuntimeError("refused: s3cret-pass")
            except RuntimeError:
                log.exception("message_failed")
            logged_by = SystemClock().now()
            time.sleep(0.02)
            assert [] == rendered
        assert ["session_recorded", "message_failed"] == rendered
        recorded, failed = lines(out)
        assert ("s1", "info", "error") == (
            recorded["session_id"],
            recorded["level"],
            failed["level"],
        )
        stamps = [datetime.fromisoformat(line["timestamp"]) for line in (recorded, failed)]
        assert before <= stamps[0] <= stamps[1] <= logged_by
        assert f"RuntimeError: refused: {logs.REDACTED}" in failed["exception"]
        assert "s3cret-pass" not in out.getvalue()
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


@pytest.fixture
def err(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Err]:
    """stderr, with logging not configured yet (as at the start of ``needlecare run``)."""
    structlog.reset_defaults()
    yield Err(capsys)
    structlog.reset_defaults()
    monkeypatch.setattr(logs, "_sink", None)


def early(**settings: Any) -> Any:
    return logs.early_lines(**{"level": "INFO", "fmt": "json", "secrets": (), **settings})


class TestEarlyLines:
    def test_lines_wait_for_the_logging_then_come_in_order_with_their_own_time(
        self, err: Err
    ) -> None:
        """Held until write_early_lines(); then in order, each stamped when it was logged."""
        log = logs.get_logger("needlecare.app.run")
        with early():
            before = SystemClock().now()
            log.info("store_migrated", version=3)
            log.debug("dropped_below_the_level")
            threading.Thread(target=lambda: log.warning("mqtt_connect_failed")).start()
            time.sleep(0.05)
            log.info("mqtt_connected", host="broker")
            held_until = SystemClock().now()
            assert "" == err.getvalue()
            logs.write_early_lines()
            written = lines(err)
            log.info("daemon_started")
        assert ["store_migrated", "mqtt_connect_failed", "mqtt_connected", "daemon_started"] == [
            line["event"] for line in lines(err)
        ]
        stamps = [datetime.fromisoformat(line["timestamp"]) for line in written]
        assert before <= stamps[0] <= stamps[1] <= stamps[2] < held_until
        assert (3, "info", "broker") == (
            written[0]["version"],
            written[0]["level"],
            written[2]["host"],
        )
        assert "_held_at" not in err.getvalue()

    def test_an_early_way_out_still_writes_its_lines_and_its_error(self, err: Err) -> None:
        """Without write_early_lines(), the block's end writes them, an exception's too."""
        log = logs.get_logger("needlecare.app.run")

        def failing_start() -> None:
            with early(secrets=["s3cret-pass"]):
                log.error("store_locked", pid=42)
                try:
                    raise RuntimeError("refused: s3cret-pass")
                except RuntimeError:
                    log.exception("start_failed")
                raise OSError("the disk is gone")

        with pytest.raises(OSError, match="the disk is gone"):
            failing_start()
        store_locked, start_failed = lines(err)
        assert ("store_locked", 42, "error") == (
            store_locked["event"],
            store_locked["pid"],
            store_locked["level"],
        )
        assert "start_failed" == start_failed["event"]
        assert f"RuntimeError: refused: {logs.REDACTED}" in start_failed["exception"]
        assert "s3cret-pass" not in err.getvalue()

    def test_without_a_hold_a_line_is_written_at_once_by_the_current_configuration(
        self, err: Err
    ) -> None:
        """Outside early_lines(), get_logger() is structlog's logger: reconfiguring applies."""
        log = logs.get_logger("needlecare.app.daemon")
        logs.configure_logging(level="INFO", fmt="json")
        log.info("daemon_stopped")
        assert ["daemon_stopped"] == [line["event"] for line in lines(err)]
        with structlog.testing.capture_logs() as captured:
            log.warning("mqtt_disconnected", reason="gone")
        assert [
            {"event": "mqtt_disconnected", "reason": "gone", "log_level": "warning"}
        ] == captured
