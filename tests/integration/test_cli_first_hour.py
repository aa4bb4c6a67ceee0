"""The first hour with the command line, against the real daemon and a real Mosquitto.

One -c everywhere, unknown profiles, one time format, check-config in plain words,
channels that exist, all-day calendar windows, help text, export, prompt texts.
"""

import csv
import io
import json
import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from needlecare_integrations.broker import MosquittoBroker
from support.daemon import DaemonFactory, DaemonProcess, wait_until
from support.mosquitto import MqttClientFactory, MqttConnection

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PEN1 = "needlecare/device/pen1/event"
PEN2 = "needlecare/device/pen2/event"
MIRROR = "needlecare/mirror/hallway/event"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")
LOCAL = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d [A-Z]{3,4}\b")
COMMANDS = (
    "ack",
    "backup",
    "calendar",
    "check-config",
    "config-reference",
    "dead-letters",
    "export",
    "log-session",
    "outbox",
    "protocol",
    "reminders",
    "report",
    "restore",
    "run",
    "schema",
    "sessions",
    "simulate",
    "snooze",
    "status",
    "void-session",
)


def event(event_id: str, kind: str, **fields: Any) -> bytes:
    return json.dumps({"event_id": event_id, "type": kind, **fields}).encode()


def treat(client: MqttConnection, topic: str, n: int) -> None:
    client.publish(topic, event(f"start{n}", "session_started"))
    client.publish(topic, event(f"end{n}", "session_ended", duration_s=600))


def needlecare(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command line as a process, with no NEEDLECARE_* variable of the outer environment."""
    return subprocess.run(
        [sys.executable, "-m", "needlecare", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def listed(daemon: DaemonProcess, what: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(daemon.cli(what, "--json").stdout)
    return rows


@pytest.fixture
def running(
    mosquitto: MosquittoBroker,
    mqtt_client_factory: MqttClientFactory,
    daemon_factory: DaemonFactory,
) -> DaemonProcess:
    """A daemon (no Home Assistant) with one treated session of alice's and its plan."""
    daemon = daemon_factory(mosquitto).start()
    treat(mqtt_client_factory(mosquitto), PEN1, 1)
    wait_until(lambda: len(listed(daemon, "reminders")) >= 5, timeout=45, what="alice's plan")
    return daemon


class TestConfigOptionEverywhere:
    @pytest.mark.parametrize("command", COMMANDS)
    def test_every_command_takes_dash_c(self, command: str, tmp_path: Path) -> None:
        """-c/--config is in every subcommand's options (schema and config-reference too)."""
        result = needlecare(command, "--help", cwd=tmp_path)
        assert 0 == result.returncode
        assert "-c, --config FILE" in result.stdout

    @pytest.mark.parametrize("command", ["schema", "config-reference"])
    def test_schema_and_reference_accept_a_config(
        self, command: str, running: DaemonProcess
    ) -> None:
        """Given a config, they run (and print what they always print)."""
        result = running.cli(command)
        assert result.stdout.strip()

    @pytest.mark.parametrize(
        "args",
        [
            ("sessions", "--profile", "carol"),
            ("reminders", "--profile", "carol"),
            ("calendar", "--profile", "carol"),
            ("log-session", "--profile", "carol"),
        ],
    )
    def test_unknown_profile_exits_2_naming_it(
        self, args: tuple[str, ...], running: DaemonProcess
    ) -> None:
        """Everywhere, an unknown --profile is a usage error that names it."""
        result = running.cli(*args, check=False)
        assert 2 == result.returncode
        assert "unknown profile 'carol' (known: alice, bob)" in result.stderr
        assert "" == result.stdout


class TestOneTimeFormat:
    def test_json_times_are_rfc3339_with_an_offset(self, running: DaemonProcess) -> None:
        """sessions, reminders and status --json: every time carries its offset."""
        times = [s[key] for s in listed(running, "sessions") for key in ("started_at", "ended_at")]
        times += [r["due_at"] for r in listed(running, "reminders")]
        status = json.loads(running.cli("status", "--json").stdout)
        times += [status["checked_at"], status["next_reminder_at"]]
        times += [e["at"] for e in status["recent_events"]]
        assert [] == [t for t in times if not RFC3339.match(t)]

    def test_human_output_is_local_time_in_one_style(self, running: DaemonProcess) -> None:
        """Tables and status show 'YYYY-MM-DD HH:MM ZONE' in alice's zone, never ISO text."""
        for command in ("sessions", "reminders", "status"):
            text = running.cli(command).stdout
            assert LOCAL.search(text), text
            assert not re.search(r"\d\dT\d\d:\d\d", text), text
            assert re.search(r" CES?T\b", text), text
        assert "running here as pid" in running.cli("status").stdout


class TestCheckConfig:
    CONFIG = (
        "profils:\n  alice: {timezone: Europe/Berlin}\n"
        "mqtt:\n  port: abc\n  pasword: hunter2-secret\n"
        "profiles:\n  alice: {timezone: Europe/Berlin, quiet_hours: {strat: '22:00'}}\n"
        "logging: {format: xml}\n"
        "devices:\n  pen1: {owner: bob}\n"
    )

    def test_every_problem_in_plain_words_with_suggestions_and_no_values(
        self, tmp_path: Path
    ) -> None:
        """One pass, plain words, did-you-mean, and the misspelled password never printed."""
        config = tmp_path / "needlecare.yaml"
        config.write_text(self.CONFIG, encoding="utf-8")
        result = needlecare("check-config", "-c", str(config), cwd=tmp_path)
        expected = (
            f"{config}: 6 problems\n"
            f"  mqtt.port: 'abc' (file {config})\n"
            "    not a whole number\n"
            f"  mqtt.pasword (file {config})\n"
            "    unknown key; did you mean 'password'? (its value is not shown)\n"
            f"  profiles.alice.quiet_hours.strat (file {config})\n"
            "    unknown key; did you mean 'start'? (its value is not shown)\n"
            f"  logging.format: 'xml' (file {config})\n"
            "    must be one of 'auto', 'json' or 'console'\n"
            f"  profils (file {config})\n"
            "    unknown key; did you mean 'profiles'? (its value is not shown)\n"
            f"  devices.pen1.owner: 'bob' (file {config})\n"
            "    unknown profile 'bob'\n"
        )
        assert (1, expected, "") == (result.returncode, result.stderr, result.stdout)
        assert "Input should" not in result.stderr

    def test_the_daemon_does_not_log_the_value_either(
        self, mosquitto: MosquittoBroker, daemon_factory: DaemonFactory
    ) -> None:
        """needlecare run with a misspelled secret exits 1; the secret is nowhere in its output."""
        daemon = daemon_factory(mosquitto, mqtt={"pasword": "hunter2-secret"})
        daemon.start(wait_connected=False)
        assert 1 == daemon.wait_exit()
        assert "mqtt.pasword" in daemon.log_text()
        assert "did you mean 'password'?" in daemon.log_text()
        assert "hunter2" not in daemon.log_text()

    def test_no_profiles_or_devices_warns(self, tmp_path: Path) -> None:
        """An empty config is valid, with a warning for each thing it lacks."""
        config = tmp_path / "empty.yaml"
        config.write_text("mqtt: {port: 1883}\n", encoding="utf-8")
        result = needlecare("check-config", "-c", str(config), cwd=tmp_path)
        assert 0 == result.returncode
        assert result.stdout.startswith("configuration OK: 0 profile(s), 0 device(s)")
        assert "warning: no profiles:" in result.stderr
        assert "warning: no devices:" in result.stderr


class TestChannelsThatExist:
    def test_without_home_assistant_only_the_mirror(self, running: DaemonProcess) -> None:
        """No Home Assistant: no dashboard, mobile or voice in any reminder or escalation."""
        reminders = listed(running, "reminders")
        assert {"mirror"} == {c for r in reminders for c in r["channels"]}
        assert [] == [r["escalation"] for r in reminders if r["escalation"]]
        assert "voice" not in running.cli("reminders").stdout

    def test_with_home_assistant_but_no_voice_or_phone(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """Home Assistant without a voice service or notify service: mirror and dashboard."""
        daemon = daemon_factory(
            mosquitto, homeassistant={"url": "http://127.0.0.1:9", "token": "t0ken"}
        ).start()
        treat(mqtt_client_factory(mosquitto), PEN1, 1)
        wait_until(lambda: len(listed(daemon, "reminders")) >= 5, timeout=45, what="alice's plan")
        reminders = listed(daemon, "reminders")
        assert {"mirror", "dashboard"} == {c for r in reminders for c in r["channels"]}
        soothe = next(r for r in reminders if r["kind"] == "soothe")
        assert [] == soothe["escalation"]  # voice and mobile rungs: neither exists


class TestCalendar:
    def test_windows_are_all_day_events_in_the_profiles_dates(self, running: DaemonProcess) -> None:
        """DTSTART/DTEND are dates (VALUE=DATE) from alice's local day +28 to the day after +42."""
        [session] = listed(running, "sessions")
        ended = datetime.fromisoformat(session["ended_at"])
        text = running.cli("calendar", "--profile", "alice").stdout
        starts = re.findall(r"^DTSTART;VALUE=DATE:(\d{8})$", text, re.MULTILINE)
        ends = re.findall(r"^DTEND;VALUE=DATE:(\d{8})$", text, re.MULTILINE)
        assert (1, 1) == (len(starts), len(ends))
        assert "DTSTART:" not in text
        local_end = ended.astimezone(ZoneInfo("Europe/Berlin")).date()
        first = date.fromisoformat(starts[0])
        after = date.fromisoformat(ends[0])
        assert (28, 43) == ((first - local_end).days, (after - local_end).days)


class TestHelp:
    def test_top_level_help_is_never_cut_off(self, tmp_path: Path) -> None:
        """needlecare --help lists every command with its whole line, no '...'."""
        result = needlecare("--help", cwd=tmp_path)
        assert 0 == result.returncode
        assert "..." not in result.stdout.split("Commands:")[1]
        for command in COMMANDS:
            assert re.search(rf"^  {re.escape(command)}\s", result.stdout, re.MULTILINE)

    @pytest.mark.parametrize("command", COMMANDS)
    def test_no_internal_references_in_help(self, command: str, tmp_path: Path) -> None:
        """No PRODUCT §... in any help text."""
        assert "PRODUCT" not in needlecare(command, "--help", cwd=tmp_path).stdout

    def test_no_internal_references_in_docs_or_protocol(self, running: DaemonProcess) -> None:
        """README, docs/ and the printed protocol never send readers to an internal section."""
        texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        assert [] == [p.name for p in texts if "PRODUCT §" in p.read_text(encoding="utf-8")]
        assert "PRODUCT" not in running.cli("protocol").stdout


class TestExport:
    def test_products_are_exported_and_csv_cells_are_plain(
        self,
        running: DaemonProcess,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
    ) -> None:
        """A product applied in front of the mirror is in the export; CSV has no JSON or reprs."""
        client = mqtt_client_factory(mosquitto)
        client.publish(
            MIRROR,
            event(
                "prod1",
                "product_applied",
                profile="alice",
                product="Night serum",
                ingredients=["retinol", "squalane"],
            ),
        )
        wait_until(lambda: json.loads(running.cli("export").stdout)["products"], what="product")
        [product] = json.loads(running.cli("export").stdout)["products"]
        assert ("alice", "Night serum", ["retinol", "squalane"]) == (
            product["profile"],
            product["product"],
            product["ingredients"],
        )
        rows = list(
            csv.DictReader(
                io.StringIO(running.cli("export", "--format", "csv", "--table", "products").stdout)
            )
        )
        assert "retinol; squalane" == rows[0]["ingredients"]
        reminders = running.cli("export", "--format", "csv", "--table", "reminders").stdout
        cells = [c for row in csv.reader(io.StringIO(reminders)) for c in row]
        assert not [c for c in cells if c.startswith(("[", "{")) or c in ("True", "False", "None")]
        assert {"true", "false"} <= set(cells)


class TestPromptTexts:
    def test_the_documented_title_and_message_overrides_reach_the_prompts(
        self,
        mosquitto: MosquittoBroker,
        mqtt_client_factory: MqttClientFactory,
        daemon_factory: DaemonFactory,
    ) -> None:
        """The example in docs/care-protocol.md, as config: texts per step and per language."""
        doc = (ROOT / "docs" / "care-protocol.md").read_text(encoding="utf-8")
        section = doc[doc.index("### Changing what a prompt says") :]
        example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
        assert example is not None
        config = yaml.safe_load(example.group(1))
        bob = {"timezone": "America/New_York", "language": "de"}
        daemon = daemon_factory(mosquitto, profiles={"bob": bob}, **config).start()
        client = mqtt_client_factory(mosquitto)
        treat(client, PEN1, 1)
        treat(client, PEN2, 2)
        wait_until(lambda: len(listed(daemon, "reminders")) >= 10, timeout=45, what="both plans")
        by = {(r["profile"], r["kind"]): r for r in listed(daemon, "reminders")}
        soothe = by["alice", "soothe"]
        assert "Calm your skin, alice" == soothe["title"]
        assert soothe["message"].startswith("Cica balm now. Nothing with retinol until ")
        assert "{until}" not in soothe["message"]
        assert "Needling window open" == by["alice", "window_open"]["title"]
        assert "Zeit fürs Microneedling" == by["bob", "window_open"]["title"]
        assert by["bob", "window_open"]["message"].startswith("Die nächste Sitzung passt bis ")
