"""The Home Assistant releases that deploy/ names are the ones the e2e tests verify."""

import re
from pathlib import Path

import yaml

from support.homeassistant import TESTED_HA_VERSIONS

ROOT = Path(__file__).resolve().parents[2]


def release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class TestHomeAssistantVersions:
    def test_compose_pins_the_newest_tested_release(self) -> None:
        """Not latest, not an untested release: the newest the e2e tests run."""
        compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
        image = compose["services"]["homeassistant"]["image"]
        newest = max(TESTED_HA_VERSIONS, key=release)
        assert f"ghcr.io/home-assistant/home-assistant:{newest}" == image

    def test_addon_minimum_is_the_oldest_tested_release_line(self) -> None:
        """The add-on's `homeassistant` minimum is the oldest tested release's x.y.0."""
        path = ROOT / "deploy" / "homeassistant-addon" / "needlecare" / "config.yaml"
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
        year, month, _ = release(min(TESTED_HA_VERSIONS, key=release))
        assert f"{year}.{month}.0" == manifest["homeassistant"]

    def test_docs_state_the_tested_range(self) -> None:
        """docs/homeassistant.md's table lists every tested release."""
        text = (ROOT / "docs" / "homeassistant.md").read_text(encoding="utf-8")
        table = re.findall(r"^\| (\d{4}\.\d+\.\d+) \|", text, flags=re.MULTILINE)
        assert sorted(TESTED_HA_VERSIONS, key=release) == table
