"""The docs name only commands and config keys that exist."""

import re
from pathlib import Path

import pytest

from needlecare.cli.main import cli

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(DOCS.glob("*.md"))


class TestDocs:
    @pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
    def test_every_needlecare_command_exists(self, page: Path) -> None:
        """Each `needlecare <command>` mentioned in a docs page is a real command."""
        mentioned = set(re.findall(r"needlecare ([a-z][a-z-]+)", page.read_text(encoding="utf-8")))
        real = set(cli.list_commands(None))  # type: ignore[arg-type]
        words = {"run", "the", "is", "and", "on", "as", "to", "daemon", "with", "in", "for"}
        assert set() == {m for m in mentioned if m not in words} - real - words

    def test_architecture_and_troubleshooting_exist(self) -> None:
        """The architecture page has a diagram; troubleshooting covers broker, token and clock."""
        architecture = (DOCS / "architecture.md").read_text(encoding="utf-8")
        assert "```mermaid" in architecture
        troubleshooting = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
        for topic in ("Broker", "token", "Entities unavailable", "timezone"):
            assert topic in troubleshooting
