"""The README's examples are real: every payload validates, the commands exist."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from needlecare.cli.main import cli
from needlecare.domain.events import COMMANDS, DEVICE_EVENTS, MIRROR_EVENTS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\s*```json\n(.*?)```", re.DOTALL)
ADAPTERS = {"device": DEVICE_EVENTS, "mirror": MIRROR_EVENTS, "command": COMMANDS}
EXAMPLES = EXAMPLE.findall(README)


class TestReadme:
    def test_examples_cover_every_inbound_topic(self) -> None:
        """There is at least one example payload per inbound topic."""
        assert {"command", "device", "mirror"} == {kind for kind, _ in EXAMPLES}

    @pytest.mark.parametrize(("kind", "payload"), EXAMPLES)
    def test_example_payload_is_valid(self, kind: str, payload: str) -> None:
        """Each example payload passes the same validation as a real message."""
        ADAPTERS[kind].validate_json(payload)

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
