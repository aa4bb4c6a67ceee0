"""The Home Assistant add-on: its options schema, the converter to a config, its image."""

import json
import os
import re
import stat
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from datetime import time as clock_time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from needlecare.config import NeedlecareConfig, load_config
from needlecare.domain.slugs import SLUG_PATTERN
from support.deploy import (
    ADDON,
    addon_converter,
    instructions,
    load_yaml,
    run_converter,
)

pytestmark = pytest.mark.integration


# --- the Home Assistant add-on -------------------------------------------------------


def schema_leaves(schema: dict[str, Any], items: str) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(option path, schema type) for every option; list items are marked with ``items``."""
    for key, value in schema.items():
        if isinstance(value, dict):
            for path, leaf in schema_leaves(value, items):
                yield (key, *path), leaf
        elif isinstance(value, list) and isinstance(value[0], dict):
            for path, leaf in schema_leaves(value[0], items):
                yield (key, items, *path), leaf
        else:
            yield (key,), value


def strip_annotation(annotation: Any) -> Any:
    """Without Optional[...] and Annotated[...] wrappers."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in {typing.Union, types.UnionType}:
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            assert 1 == len(members), annotation
            annotation = members[0]
        else:
            return annotation


def config_field(path: tuple[str, ...], key: str) -> Any:
    """The annotation at a config path; ``key`` steps into a mapping (its key if last)."""
    annotation: Any = NeedlecareConfig
    for index, part in enumerate(path):
        annotation = strip_annotation(annotation)
        if part == key:
            assert dict is typing.get_origin(annotation), f"{path}: not a mapping at {part}"
            key_type, value_type = typing.get_args(annotation)
            annotation = key_type if index == len(path) - 1 else value_type
            continue
        assert isinstance(annotation, type), f"{path}: {part} is not in a section"
        assert issubclass(annotation, BaseModel), f"{path}: {part} is not in a section"
        assert part in annotation.model_fields, f"{path}: no field {part!r}"
        annotation = annotation.model_fields[part].annotation
    return strip_annotation(annotation)


def compatible(schema_type: Any, annotation: Any, *, converted: bool) -> bool:
    """Whether a value of the add-on schema type is right for the config field."""
    if isinstance(schema_type, list):  # a list of scalars
        inner = typing.get_args(annotation)
        return typing.get_origin(annotation) is list and compatible(
            schema_type[0], strip_annotation(inner[0]), converted=False
        )
    kind = schema_type.rstrip("?")
    if kind.startswith("list("):
        choices = {c.upper() for c in kind[5:-1].split("|")}
        allowed = {str(v).upper() for v in typing.get_args(annotation)}
        return typing.get_origin(annotation) is typing.Literal and choices <= allowed
    if kind.startswith("match(") and annotation is clock_time:
        # A time of day as "HH:MM" text, which the model parses.
        return bool(re.fullmatch(kind[6:-1], "22:00")) and not re.fullmatch(kind[6:-1], "25:00")
    numbers = {int: ("int", "port"), float: ("float",), bool: ("bool",)}
    if converted and annotation is timedelta:
        return kind.startswith("int")  # minutes or hours, turned into seconds
    if annotation in numbers:
        return kind.startswith(numbers[annotation])
    texts = ("str", "password", "url", "email", "match(")
    return kind.startswith(texts) and annotation in {str, SecretStr, Path}


def test_addon_schema_options_are_fields_of_the_config_models() -> None:
    """Every add-on option maps to a field of NeedlecareConfig, with a matching type.

    The walk follows options_to_config.OPTION_PATHS into the pydantic models; list items'
    ``id`` options (mapping keys in the config), owners and mirror profiles are slugs.
    """
    converter = addon_converter()
    schema = load_yaml(ADDON / "config.yaml")["schema"]
    leaves = dict(schema_leaves(schema, converter.ITEMS))
    assert leaves.keys() == converter.OPTION_PATHS.keys()
    for option_path, schema_type in leaves.items():
        target = converter.OPTION_PATHS[option_path]
        annotation = config_field(target, converter.KEY)
        converted = option_path in converter.CONVERSIONS
        assert compatible(schema_type, annotation, converted=converted), (
            f"{'.'.join(option_path)}: {schema_type} does not fit {target} ({annotation})"
        )
    # Ids, owners and mirror profiles are slugs in the models: the same pattern here, so
    # the add-on's form refuses what the daemon would refuse at start.
    slugs = [path for path in leaves if path[-1] == converter.ID]
    slugs += [("devices", converter.ITEMS, "owner"), ("mirrors", converter.ITEMS, "profiles")]
    for path in slugs:
        schema_type = leaves[path]
        assert f"match({SLUG_PATTERN})" == (
            schema_type[0] if isinstance(schema_type, list) else schema_type
        ), path


def supervisor_validate(options: Any, schema: Any, where: str = "root") -> None:
    """The Supervisor's checks, simplified: required keys, no unknown keys, value types."""
    if isinstance(schema, dict):
        assert isinstance(options, dict), where
        assert not options.keys() - schema.keys(), f"unknown options in {where}"
        for key, typ in schema.items():
            if key not in options:
                assert isinstance(typ, str), f"missing {where}.{key}"
                assert typ.endswith("?"), f"missing {where}.{key}"
                continue
            supervisor_validate(options[key], typ, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(options, list), where
        for item in options:
            supervisor_validate(item, schema[0], where)
    else:
        kind = schema.rstrip("?")
        if kind.startswith("match("):
            assert re.fullmatch(kind[6:-1], str(options)), f"{where}: {options!r} !~ {kind}"
        elif kind.startswith("list("):
            assert str(options) in kind[5:-1].split("|"), where
        elif kind.startswith(("int", "port")):
            assert isinstance(options, int), where
        elif kind.startswith("float"):
            assert isinstance(options, int | float), where
        elif kind == "bool":
            assert isinstance(options, bool), where
        else:
            assert isinstance(options, str), where


SAMPLE_OPTIONS: dict[str, Any] = {
    "log_level": "debug",
    "mqtt": {"base_topic": "needlecare", "client_id": "needlecare-addon"},
    "homeassistant": {"snooze_minutes": 20},
    "profiles": [
        {
            "id": "alice",
            "timezone": "Europe/Berlin",
            "display_name": "Alice",
            "notify_service": "notify.mobile_app_alices_phone",
            "person": "person.alice",
            "quiet_hours_start": "22:30",
            "quiet_hours_end": "06:45",
        },
        {"id": "bob", "timezone": "America/New_York", "display_name": ""},
    ],
    "devices": [
        {"id": "pen1", "owner": "alice", "name": "Alice's pen", "max_needle_depth_mm": 1.5},
        {"id": "pen2", "owner": "bob"},
    ],
    "mirrors": [{"id": "hallway", "profiles": ["alice"]}, {"id": "bathroom", "profiles": []}],
    "sessions": {"timeout_minutes": 90},
    "reminders": {"grace_hours": 6},
}


def test_addon_default_and_sample_options_satisfy_the_schema() -> None:
    """The manifest's default options and the sample pass the Supervisor's schema checks."""
    manifest = load_yaml(ADDON / "config.yaml")
    supervisor_validate(manifest["options"], manifest["schema"])
    supervisor_validate(SAMPLE_OPTIONS, manifest["schema"])
    assert {"aarch64", "amd64"} >= set(manifest["arch"])
    assert set(manifest["arch"]) == set(load_yaml(ADDON / "build.yaml")["build_from"])


def test_addon_sample_options_convert_to_a_config_that_loads(tmp_path: Path) -> None:
    """options.json -> options_to_config.py -> a YAML config that load_config accepts.

    Also: the extra file is laid under the options, the store is in /data, Home
    Assistant is reached through the Supervisor with the token from the environment
    (as run.sh passes it), and the written file is private to the add-on.
    """
    extra = (
        "profiles:\n"
        "  alice:\n"
        "    voice: {service: tts.speak, data: {entity_id: tts.piper}}\n"
        "    display_name: From the file\n"
        "store: {path: /elsewhere.db}\n"
    )
    out = run_converter(SAMPLE_OPTIONS, tmp_path, extra)
    assert 0o600 == stat.S_IMODE(out.stat().st_mode)
    environ = {
        "NEEDLECARE_HOMEASSISTANT__TOKEN": "supervisor-token",
        "NEEDLECARE_MQTT__HOST": "core-mosquitto",
    }
    config = load_config(out, environ=environ)
    alice = config.profiles["alice"]
    assert "Alice" == alice.display_name  # the options win over the file
    assert alice.voice is not None
    assert "tts.speak" == alice.voice.service  # what only the file can say
    assert (clock_time(22, 30), clock_time(6, 45)) == (
        alice.quiet_hours.start,
        alice.quiet_hours.end,
    )
    assert "notify.mobile_app_alices_phone" == alice.notify_service
    assert config.profiles["bob"].display_name is None  # blank means unset
    assert "bob" == config.devices["pen2"].owner
    assert 1.5 == config.devices["pen1"].max_needle_depth_mm
    assert ["alice"] == config.mirrors["hallway"].profiles
    assert [] == config.mirrors["bathroom"].profiles
    assert timedelta(minutes=90) == config.sessions.timeout
    assert timedelta(hours=6) == config.reminders.grace
    assert Path("/data/needlecare.db") == config.store.path
    assert config.homeassistant is not None
    assert "http://supervisor/core" == config.homeassistant.url
    assert config.homeassistant.token is not None
    assert "supervisor-token" == config.homeassistant.token.get_secret_value()
    assert 20 == config.homeassistant.snooze_minutes
    assert "core-mosquitto" == config.mqtt.host
    assert "needlecare-addon" == config.mqtt.client_id
    assert "DEBUG" == config.logging.level


def test_addon_default_options_convert_to_a_config_that_loads(tmp_path: Path) -> None:
    """The options a fresh install starts with make a valid config (no extra file)."""
    options = load_yaml(ADDON / "config.yaml")["options"]
    config = load_config(run_converter(options, tmp_path), environ={})
    assert ["me"] == list(config.profiles)


def test_addon_converter_refuses_options_it_does_not_know(tmp_path: Path) -> None:
    """An option without a mapping is an error, not silently dropped; nothing is written."""
    options_path = tmp_path / "options.json"
    options_path.write_text(json.dumps({"mqtt": {"hostname": "x"}}), encoding="utf-8")
    out = tmp_path / "needlecare.yaml"
    result = subprocess.run(
        [sys.executable, str(ADDON / "options_to_config.py"), str(options_path), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 1 == result.returncode
    assert "unknown option mqtt.hostname" in result.stderr
    assert not out.exists()


def test_addon_image_and_start_script_follow_the_add_on_conventions() -> None:
    """Dockerfile: ARG BUILD_FROM then FROM $BUILD_FROM; run.sh: bashio, converter, exec run."""
    parsed = instructions(ADDON / "Dockerfile")
    assert ("ARG", "BUILD_FROM") == parsed[0]
    assert ("FROM", "$BUILD_FROM") == parsed[1]
    assert 1 == sum(1 for keyword, _ in parsed if keyword == "FROM")
    run_sh = (ADDON / "run.sh").read_text(encoding="utf-8")
    assert run_sh.startswith("#!/usr/bin/with-contenv bashio\n")
    installed = re.search(r"install -D -m 644 \S+ (\S+options_to_config\.py)", str(parsed))
    assert installed is not None
    assert f"CONVERTER={installed.group(1)}" in run_sh
    assert "exec needlecare run -c" in run_sh
    assert os.access(ADDON / "run.sh", os.X_OK)
    subprocess.run(["bash", "-n", str(ADDON / "run.sh")], check=True, timeout=30)
    manifest = load_yaml(ADDON / "config.yaml")
    assert manifest["homeassistant_api"] is True
    assert "mqtt:want" in manifest["services"]
    assert manifest["init"] is False  # run.sh is the command under the base's s6 /init
