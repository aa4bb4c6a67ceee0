"""The README's examples are real: every payload validates, the commands exist."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from needlecare.cli.main import cli
from needlecare.domain.events import COMMANDS, DEVICE_EVENTS, MIRROR_EVENTS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\s*```json\n(.*?)```", re.DOTALL)
ADAPTERS = {"device": DEVICE_EVENTS, "mirror": MIRROR_EVENTS, "command": COMMANDS}
EXAMPLES = [(kind, body) for kind, body in EXAMPLE.findall(README) if kind in ADAPTERS]
OUTBOUND = {
    kind: json.loads(body) for kind, body in EXAMPLE.findall(README) if kind not in ADAPTERS
}


class TestReadme:
    def test_examples_cover_every_inbound_topic(self) -> None:
        """There is at least one example payload per inbound topic."""
        assert {"command", "device", "mirror"} == {kind for kind, _ in EXAMPLES}

    @pytest.mark.parametrize(("kind", "payload"), EXAMPLES)
    def test_example_payload_is_valid(self, kind: str, payload: str) -> None:
        """Each example payload passes the same validation as a real message."""
        ADAPTERS[kind].validate_json(payload)

    def test_notification_example_has_the_shape_the_daemon_publishes(self) -> None:
        """The README's notification has exactly the fields of a real one."""
        from needlecare.app.notifications import notification  # noqa: PLC0415
        from needlecare.domain.protocol import Channel, Severity  # noqa: PLC0415
        from needlecare.domain.reminders import Reminder, ReminderStatus  # noqa: PLC0415

        moment = datetime(2026, 3, 1, 19, 15, tzinfo=UTC)
        real = notification(
            Reminder(
                id="r", session_id="s", profile="alice", kind="soothe", title="t", message="m",
                severity=Severity.WARNING, channels=(Channel.MIRROR,), needs_ack=True,
                escalation=(), status=ReminderStatus.SENT, due_at=moment, planned_at=moment,
                created_at=moment, delivered_at=moment,
            )
        )  # fmt: skip
        assert sorted(real) == sorted(OUTBOUND["notification"])

    def test_state_example_has_the_product_fields(self) -> None:
        """The README's state example names every PRODUCT §2 state field, and the
        profile's language (which a mirror words that person's buttons in)."""
        expected = {
            "profile", "display_name", "language", "status", "last_session_at", "recovery_day",
            "restrictions", "next_window_start", "next_window_end", "open_prompts",
        }  # fmt: skip
        assert expected == set(OUTBOUND["state"])

    def test_state_example_prompt_has_the_shape_the_daemon_publishes(self) -> None:
        """The README's open prompt has exactly the fields of a real one."""
        from needlecare.domain.profile_state import OpenPrompt, ProfileState, to_json  # noqa: PLC0415
        from needlecare.domain.protocol import Severity  # noqa: PLC0415

        moment = datetime(2026, 3, 1, 19, 15, tzinfo=UTC)
        prompt = OpenPrompt("r", "soothe", "t", Severity.WARNING, moment, "m")
        state = ProfileState("alice", "no_history", None, None, (), None, None, (prompt,))
        assert sorted(to_json(state)) == sorted(OUTBOUND["state"])
        real = to_json(state)["open_prompts"]
        assert isinstance(real, list)
        assert sorted(real[0]) == sorted(OUTBOUND["state"]["open_prompts"][0])

    def test_cli_table_lists_real_commands(self) -> None:
        """Every command in the README's CLI table exists."""
        documented = set(re.findall(r"^\| `needlecare ([a-z-]+)", README, re.MULTILINE))
        real = set(cli.list_commands(None))  # type: ignore[arg-type]
        assert set() == documented - real

    def test_ci_runs_the_readme_test_command(self) -> None:
        """The two set-up commands are scripts in the repo, and CI calls the test one."""
        assert "deploy/trial.sh" in README
        assert "tests/run.sh" in README
        assert (ROOT / "deploy/trial.sh").exists()
        assert "tests/run.sh" in (ROOT / ".ci/run").read_text(encoding="utf-8")

    def test_help_runs(self) -> None:
        """``needlecare --help`` lists the commands."""
        result = CliRunner().invoke(cli, ["--help"])
        assert (0, True) == (result.exit_code, "check-config" in result.output)
