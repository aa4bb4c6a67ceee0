"""The ``needlecare`` command line, in-process, against a real store in tmp_path."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import csv
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from needlecare.cli.main import cli
from needlecare.domain.records import DeadLetter, SkinCheckRecord
from needlecare.domain.sessions import Session, SessionStatus
from needlecare_integrations.store import SqliteStore

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "config" / "needlecare.example.yaml"
NOW = datetime(2026, 7, 6, 12, 0, tzinfo=UTC)
SESSION_KEYS = {
    "id",
    "profile",
    "device_id",
    "setting",
    "started_at",
    "ended_at",
    "status",
    "needle_depth_mm",
}

# Alice in Berlin in winter (CET), Bob in New York in summer (EDT), late enough in
# the evening that his local date is a day behind UTC.
ALICE_PEN = Session(
    id="ses_alice_pen",
    profile="alice",
    device_id="pen1",
    setting="home",
    status=SessionStatus.COMPLETED,
    started_at=datetime(2026, 1, 10, 19, 0, tzinfo=UTC),
    ended_at=datetime(2026, 1, 10, 19, 20, tzinfo=UTC),
    last_seen_at=datetime(2026, 1, 10, 19, 20, tzinfo=UTC),
    needle_depth_mm=0.5,
    zones=("forehead", "cheeks"),
)
BOB_PEN = Session(
    id="ses_bob_pen",
    profile="bob",
    device_id="pen2",
    setting="home",
    status=SessionStatus.OPEN,
    started_at=datetime(2026, 7, 5, 1, 30, tzinfo=UTC),
    ended_at=None,
    last_seen_at=datetime(2026, 7, 5, 1, 30, tzinfo=UTC),
)
ALICE_CLINIC = Session(
    id="ses_alice_clinic",
    profile="alice",
    device_id=None,
    setting="professional",
    status=SessionStatus.COMPLETED,
    started_at=datetime(2026, 6, 1, 8, 0, tzinfo=UTC),
    ended_at=datetime(2026, 6, 1, 9, 0, tzinfo=UTC),
    last_seen_at=datetime(2026, 6, 1, 9, 0, tzinfo=UTC),
    source="cli",
    needle_depth_mm=1.5,
    duration_s=3600,
)
SKIN_CHECKS = (
    SkinCheckRecord("chk1", "alice", datetime(2026, 1, 11, 8, 0, tzinfo=UTC), 3, "warm"),
    SkinCheckRecord("chk2", "bob", datetime(2026, 7, 5, 12, 0, tzinfo=UTC), 1, None),
)
ODD_TOPIC = "needlecare/device/pen1\x1b[2J\x00/event"


def config_text(store_path: Path) -> str:
    return (
        "mqtt: {host: 127.0.0.1, port: 1}\n"
        f"store: {{path: {json.dumps(str(store_path))}}}\n"
        "profiles:\n"
        "  alice: {timezone: Europe/Berlin}\n"
        "  bob: {timezone: America/New_York}\n"
        "devices:\n"
        "  pen1: {owner: alice}\n"
        "  pen2: {owner: bob}\n"
    )


def write_config(tmp_path: Path, store_path: Path) -> Path:
    path = tmp_path / "needlecare.yaml"
    path.write_text(config_text(store_path), encoding="utf-8")
    return path


def seed(path: Path) -> None:
    """Fill a store the way the daemon would have."""
    store = SqliteStore.open(path, now=NOW)
    try:
        for session in (ALICE_PEN, BOB_PEN, ALICE_CLINIC):
            store.save_session(session)
        for check in SKIN_CHECKS:
            store.add_skin_check(check)
        store.add_dead_letter(
            DeadLetter(
                received_at=NOW,
                topic=ODD_TOPIC,
                payload_excerpt='{"type": "bogus"}',
                payload_size=17,
                reason="unknown event type",
            )
        )
    finally:
        store.close()


def invoke(*args: str) -> Result:
    """Run the CLI in-process, with no NEEDLECARE_* variable of the outer environment."""
    outer = {name: None for name in os.environ if name.upper().startswith("NEEDLECARE_")}
    return CliRunner().invoke(cli, list(args), env=outer, catch_exceptions=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose store holds three sessions, two skin checks and a dead letter."""
    store_path = tmp_path / "data" / "needlecare.db"
    seed(store_path)
    return write_config(tmp_path, store_path)


@pytest.fixture
def empty_config(tmp_path: Path) -> Path:
    """A config whose store exists but holds nothing."""
    store_path = tmp_path / "empty.db"
    SqliteStore.open(store_path, now=NOW).close()
    return write_config(tmp_path, store_path)


class TestSessions:
    def test_json_lists_every_session_with_the_documented_keys(self, config: Path) -> None:
        """Each object carries the PRODUCT §5 keys, times in UTC RFC 3339."""
        result = invoke("sessions", "-c", str(config), "--json")
        listed = json.loads(result.stdout)
        assert 0 == result.exit_code
        assert ["ses_alice_pen", "ses_bob_pen", "ses_alice_clinic"] == [s["id"] for s in listed]
        assert all(SESSION_KEYS <= set(s) for s in listed)
        expected = {
            "id": "ses_alice_pen",
            "profile": "alice",
            "device_id": "pen1",
            "setting": "home",
            "started_at": "2026-01-10T19:00:00+00:00",
            "ended_at": "2026-01-10T19:20:00+00:00",
            "status": "completed",
            "needle_depth_mm": 0.5,
            "zones": ["forehead", "cheeks"],
        }
        assert expected == {key: listed[0][key] for key in expected}

    def test_profile_filters(self, config: Path) -> None:
        """--profile keeps that person's sessions only."""
        result = invoke("sessions", "-c", str(config), "--json", "--profile", "bob")
        assert [("ses_bob_pen", "bob", None)] == [
            (s["id"], s["profile"], s["ended_at"]) for s in json.loads(result.stdout)
        ]

    def test_table_shows_times_in_each_profiles_zone(self, config: Path) -> None:
        """Alice's winter session in CET, Bob's summer evening in EDT (a day behind UTC)."""
        result = invoke("sessions", "-c", str(config))
        lines = result.stdout.splitlines()
        assert 0 == result.exit_code
        assert 4 == len(lines)
        assert ["ID", "PROFILE", "DEVICE", "SETTING", "STARTED"] == lines[0].split()[:5]
        assert "2026-01-10 20:00 CET" in lines[1]
        assert "2026-01-10 20:20 CET" in lines[1]
        assert "2026-07-04 21:30 EDT" in lines[2]
        assert "2026-06-01 10:00 CEST" in lines[3]
        assert "cli" == lines[3].split()[2]

    def test_table_says_none_when_empty(self, empty_config: Path) -> None:
        """An empty journal prints (none), not a bare header."""
        result = invoke("sessions", "-c", str(empty_config))
        assert (0, "(none)\n") == (result.exit_code, result.stdout)

    def test_unknown_profile_is_a_usage_error(self, config: Path) -> None:
        """A profile the config does not have exits 2 naming it (and the known ones)."""
        result = invoke("sessions", "-c", str(config), "--profile", "carol")
        assert (2, "") == (result.exit_code, result.stdout)
        assert "unknown profile 'carol' (known: alice, bob)" in result.stderr

    def test_missing_store_exits_4_naming_the_path(self, tmp_path: Path) -> None:
        """No database at store.path: exit 4 and the path in the message, no traceback."""
        missing = tmp_path / "nowhere" / "needlecare.db"
        result = invoke("sessions", "-c", str(write_config(tmp_path, missing)))
        assert 4 == result.exit_code
        assert str(missing) in result.stderr
        assert "" == result.stdout
        assert not missing.parent.exists()

    def test_file_that_is_not_a_store_exits_4(self, tmp_path: Path) -> None:
        """store.path pointing at some other file is reported like a missing store."""
        other = tmp_path / "notes.txt"
        other.write_text("not a database\n" * 200, encoding="utf-8")
        result = invoke("sessions", "-c", str(write_config(tmp_path, other)))
        assert 4 == result.exit_code
        assert str(other) in result.stderr


class TestDeadLetters:
    def test_json_keeps_the_topic_exactly(self, config: Path) -> None:
        """The JSON output carries the raw topic, control characters and all."""
        result = invoke("dead-letters", "-c", str(config), "--json")
        [letter] = json.loads(result.stdout)
        expected = {
            "id": 1,
            "received_at": "2026-07-06T12:00:00+00:00",
            "topic": ODD_TOPIC,
            "payload_excerpt": '{"type": "bogus"}',
            "payload_size": 17,
            "reason": "unknown event type",
        }
        assert expected == letter

    def test_table_escapes_control_characters(self, config: Path) -> None:
        """A topic cannot clear the screen or hide text: controls are shown escaped."""
        result = invoke("dead-letters", "-c", str(config))
        assert 0 == result.exit_code
        assert "needlecare/device/pen1\\x1b[2J\\x00/event" in result.stdout
        assert "unknown event type" in result.stdout
        assert not any(ch in result.stdout for ch in "\x1b\x00\r")

    def test_table_says_none_when_empty(self, empty_config: Path) -> None:
        """No dead letters prints (none)."""
        result = invoke("dead-letters", "-c", str(empty_config))
        assert (0, "(none)\n") == (result.exit_code, result.stdout)


class TestExport:
    def test_json_has_sessions_and_skin_checks(self, config: Path) -> None:
        """The default export is one JSON object with both tables."""
        result = invoke("export", "-c", str(config))
        data = json.loads(result.stdout)
        assert ["products", "reminders", "sessions", "skin_checks"] == sorted(data)
        assert 3 == len(data["sessions"])
        assert [
            {
                "event_id": "chk1",
                "profile": "alice",
                "checked_at": "2026-01-11T08:00:00+00:00",
                "redness": 3,
                "note": "warm",
            },
            {
                "event_id": "chk2",
                "profile": "bob",
                "checked_at": "2026-07-05T12:00:00+00:00",
                "redness": 1,
                "note": None,
            },
        ] == data["skin_checks"]

    def test_csv_writes_sessions_with_a_header(self, config: Path) -> None:
        """CSV defaults to the sessions table: a header, then one row per session."""
        result = invoke("export", "-c", str(config), "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert 0 == result.exit_code
        assert SESSION_KEYS <= set(rows[0])
        assert ["ses_alice_pen", "ses_bob_pen", "ses_alice_clinic"] == [r["id"] for r in rows]
        assert ("2026-01-10T19:00:00+00:00", "forehead; cheeks", "", "") == (
            rows[0]["started_at"],
            rows[0]["zones"],
            rows[1]["ended_at"],
            rows[1]["needle_depth_mm"],
        )

    def test_csv_of_skin_checks(self, config: Path) -> None:
        """--table skin_checks exports the readings instead."""
        result = invoke("export", "-c", str(config), "--table", "skin_checks", "--format", "csv")
        lines = result.stdout.splitlines()
        assert "event_id,profile,checked_at,redness,note" == lines[0]
        assert [
            {
                "event_id": "chk1",
                "profile": "alice",
                "checked_at": "2026-01-11T08:00:00+00:00",
                "redness": "3",
                "note": "warm",
            },
            {
                "event_id": "chk2",
                "profile": "bob",
                "checked_at": "2026-07-05T12:00:00+00:00",
                "redness": "1",
                "note": "",
            },
        ] == list(csv.DictReader(io.StringIO(result.stdout)))

    def test_out_writes_the_file(self, config: Path, tmp_path: Path) -> None:
        """--out puts the export in a file, says so on stderr, and prints nothing else."""
        target = tmp_path / "export.json"
        result = invoke("export", "-c", str(config), "--out", str(target))
        assert (0, "") == (result.exit_code, result.stdout)
        assert f"wrote {target}\n" == result.stderr
        assert json.loads(invoke("export", "-c", str(config)).stdout) == json.loads(
            target.read_text(encoding="utf-8")
        )


class TestSchema:
    def test_prints_one_schema_per_topic_kind(self) -> None:
        """schema prints valid JSON with a JSON Schema for each inbound topic kind."""
        result = invoke("schema")
        schemas = json.loads(result.stdout)
        assert (0, ["command", "device_event", "mirror_event"]) == (
            result.exit_code,
            sorted(schemas),
        )
        assert all(isinstance(schema, dict) and schema for schema in schemas.values())


class TestCheckConfig:
    def test_example_config_is_valid(self) -> None:
        """The shipped example passes, summarised on one line."""
        result = invoke("check-config", "-c", str(EXAMPLE))
        assert 0 == result.exit_code
        assert result.stdout.startswith("configuration OK: 1 profile(s), 1 device(s), 1 mirror(s)")

    def test_outer_environment_does_not_leak_in(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """invoke() hides NEEDLECARE_* variables, so these tests see only their own files."""
        monkeypatch.setenv("NEEDLECARE_CONFIG", str(tmp_path / "absent.yaml"))
        monkeypatch.setenv("NEEDLECARE_MQTT__PORT", "not a port")
        result = invoke("check-config", "-c", str(EXAMPLE))
        assert 0 == result.exit_code
        assert "broker 127.0.0.1:1883" in result.stdout


class TestLogSession:
    def test_unknown_profile_is_a_usage_error(self, config: Path) -> None:
        """An unknown --profile exits 2 naming it, before anything is sent."""
        result = invoke("log-session", "-c", str(config), "--profile", "carol")
        assert 2 == result.exit_code
        assert "unknown profile 'carol'" in result.stderr

    @pytest.mark.parametrize("at", ["yesterday", "2026-13-01 10:00", "10:00"])
    def test_bad_time_is_a_usage_error(self, config: Path, at: str) -> None:
        """An --at that is not a date and time exits 2 quoting it, before anything is sent."""
        result = invoke("log-session", "-c", str(config), "--profile", "alice", "--at", at)
        assert 2 == result.exit_code
        assert f"not a date and time: {at!r}" in result.stderr

    def test_depth_out_of_range_is_a_usage_error(self, config: Path) -> None:
        """A needle depth the command schema rejects exits 2, before anything is sent."""
        result = invoke(
            "log-session", "-c", str(config), "--profile", "alice", "--depth", "9", "--wait", "0"
        )
        assert 2 == result.exit_code
        assert "needle_depth_mm" in result.stderr
