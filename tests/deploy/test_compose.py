"""Every YAML file under deploy/ parses; the Compose stack and the config it mounts."""

from typing import Any

import pytest

from needlecare.config import load_config
from support.deploy import (
    COMPOSE,
    CONTAINERFILE,
    DEPLOY,
    compose_services,
    instructions,
    load_yaml,
)

pytestmark = pytest.mark.integration


# --- every YAML file ---------------------------------------------------------------


def test_every_yaml_artefact_parses() -> None:
    """Each YAML file under deploy/ parses with yaml.safe_load (no custom tags)."""
    files = sorted(DEPLOY.rglob("*.yaml"))
    names = {str(f.relative_to(DEPLOY)) for f in files}
    assert {
        "compose.yaml",
        "compose/needlecare.yaml",
        "compose/homeassistant/configuration.yaml",
        "homeassistant-addon/needlecare/config.yaml",
        "homeassistant-addon/needlecare/build.yaml",
        "lovelace/needlecare-card.yaml",
    } <= names
    for file in files:
        assert isinstance(load_yaml(file), dict), file


# --- compose -----------------------------------------------------------------------


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (relative to deploy/) or volume name."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        found[target] = source
    return found


def test_compose_has_mosquitto_homeassistant_and_needlecare_with_healthchecks() -> None:
    """Three services, each with a healthcheck; Needlecare waits for a healthy broker."""
    services = compose_services()
    assert {"mosquitto", "homeassistant", "needlecare"} <= services.keys()
    for name in ("mosquitto", "homeassistant", "needlecare"):
        check = services[name].get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
    needlecare = services["needlecare"]
    assert "service_healthy" == needlecare["depends_on"]["mosquitto"]["condition"]
    assert "deploy/container/Containerfile" == needlecare["build"]["dockerfile"]
    assert (DEPLOY / needlecare["build"]["context"] / needlecare["build"]["dockerfile"]).is_file()
    # Every file the stack mounts is in the repository.
    for service in services.values():
        for source in mounts(service).values():
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), source


def test_compose_needlecare_config_loads_without_problems() -> None:
    """The config mounted into the needlecare service loads with load_config and no problems.

    It talks to the compose services by name and keeps its store in the data volume.
    """
    needlecare = compose_services()["needlecare"]
    config_path = needlecare["environment"]["NEEDLECARE_CONFIG"]
    source = mounts(needlecare)[config_path]
    config = load_config(DEPLOY / source, environ={})
    assert "mosquitto" == config.mqtt.host
    assert config.homeassistant is not None
    assert "http://homeassistant:8123" == config.homeassistant.url
    data_volume = mounts(needlecare)["/data"]
    assert data_volume in load_yaml(COMPOSE)["volumes"]
    assert config.store.path.is_relative_to("/data")
    # The same path the image looks at by default.
    image_env = " ".join(args for keyword, args in instructions(CONTAINERFILE) if keyword == "ENV")
    assert f"NEEDLECARE_CONFIG={config_path}" in image_env.split()
    # The broker configuration mounted into mosquitto is the one tested below.
    assert (
        "./compose/mosquitto.conf"
        == mounts(compose_services()["mosquitto"])["/mosquitto/config/mosquitto.conf"]
    )
