"""docs/care-protocol.md is the output of ``needlecare protocol``, word for word."""

import re
from pathlib import Path

from click.testing import CliRunner

from needlecare.cli.main import cli
from needlecare.domain.protocol import STEP_NAMES

DOC = Path(__file__).resolve().parents[2] / "docs" / "care-protocol.md"
GENERATED = re.compile(r"-->\n(.*)<!-- end of generated part -->", re.DOTALL)


class TestProtocolDoc:
    def test_doc_matches_the_command(self) -> None:
        """The generated part of the docs equals what the command prints today."""
        result = CliRunner().invoke(cli, ["protocol"], env={"NEEDLECARE_CONFIG": None})
        match = GENERATED.search(DOC.read_text(encoding="utf-8"))
        assert match is not None
        assert (0, result.output) == (result.exit_code, match.group(1))

    def test_every_step_has_its_source_rule_and_the_disclaimer(self) -> None:
        """Each step is listed with a source rule, and the not-medical-advice line is there."""
        text = DOC.read_text(encoding="utf-8")
        assert "**Not medical advice.**" in text
        for name in STEP_NAMES:
            [row] = [line for line in text.splitlines() if line.startswith(f"| `{name}`")][:1]
            assert not row.rstrip().endswith("| - |"), f"{name} has no source rule"
