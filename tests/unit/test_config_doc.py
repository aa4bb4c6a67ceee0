"""docs/configuration.md is generated from the config models and cannot drift."""

import re
from pathlib import Path

from click.testing import CliRunner

from needlecare.cli.main import cli
from needlecare.config import NeedlecareConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
GENERATED = re.compile(r"do not edit by hand -->\n(.*)<!-- end of generated part -->", re.DOTALL)


class TestConfigReference:
    def test_doc_matches_the_command(self) -> None:
        """The generated part equals ``needlecare config-reference`` today."""
        result = CliRunner().invoke(cli, ["config-reference"])
        match = GENERATED.search(DOC.read_text(encoding="utf-8"))
        assert match is not None
        assert (0, result.output) == (result.exit_code, match.group(1))

    def test_every_section_is_documented(self) -> None:
        """Each top-level section of the model appears in the reference."""
        text = DOC.read_text(encoding="utf-8")
        for section in NeedlecareConfig.model_fields:
            assert f"| `{section}" in text, section
