"""The deployment artefacts under deploy/, checked as far as this machine allows.

Parsed and validated: every YAML file, the compose file and the configuration it mounts,
the add-on manifest and its options mapping, the Lovelace card against the discovery
code, the Containerfile's structure. Run for real: ``systemd-analyze verify`` on the
unit, Mosquitto with both broker configurations (queues surviving a restart), Node.js
on the MagicMirror dictionaries. End-to-end (``e2e``): the Lovelace card against a real
Home Assistant fed by a real daemon, and the container image built with podman from a
debootstrap base and run against a real Mosquitto.

What is not exercised here, and why, is listed in docs/deploy.md.
"""

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import types
import typing
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import time as clock_time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from needlecare.app.discovery import profile_entities
from needlecare.config import NeedlecareConfig, load_config
from needlecare.domain.slugs import SLUG_PATTERN
from needlecare.domain.topics import Topics
from needlecare_integrations.broker import port_in_use
from support.daemon import DaemonProcess, wait_until
from support.mosquitto import MqttClientFactory, free_port, make_password_file

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
CONTAINERFILE = DEPLOY / "container" / "Containerfile"
BUILD_SCRIPT = DEPLOY / "container" / "build.sh"
UNIT = DEPLOY / "systemd" / "needlecare.service"
MOSQUITTO_DROP_IN = DEPLOY / "mosquitto" / "mosquitto.conf"
MOSQUITTO_COMPOSE = DEPLOY / "compose" / "mosquitto.conf"
ADDON = DEPLOY / "homeassistant-addon" / "needlecare"
CARD = DEPLOY / "lovelace" / "needlecare-card.yaml"
TIMEOUT = 10.0


# --- helpers -------------------------------------------------------------------------


def ensure_program(program: str, package: str) -> str:
    """The program's path; as root on Debian, install its package first if it is missing.

    Fails (never skips) when it cannot be had, like the other integration tests.
    """

    def find() -> str | None:
        return shutil.which(program) or next(
            (str(p) for d in ("/usr/sbin", "/usr/bin") if (p := Path(d, program)).exists()),
            None,
        )

    found = find()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        lock = ["-o", "DPkg::Lock::Timeout=300"]
        subprocess.run(
            ["apt-get", *lock, "update", "-qq"], env=env, capture_output=True, check=False
        )
        subprocess.run(
            ["apt-get", *lock, "install", "-y", "-qq", package],
            check=False,
            env=env,
            capture_output=True,
            timeout=900,
        )
        found = find()
    if found is None:
        pytest.fail(f"{program} not found: apt-get install {package}", pytrace=False)
    return found


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_module(path: Path, name: str) -> types.ModuleType:
    """Import a Python file that is not in a package (the add-on's converter)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def instructions(containerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in containerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may also sit inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    parsed = []
    for text in logical:
        keyword, _, rest = text.partition(" ")
        parsed.append((keyword.upper(), rest.strip()))
    return parsed


def stages(parsed: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions split by FROM, each stage starting with its FROM."""
    out: list[list[tuple[str, str]]] = []
    for instruction in parsed:
        if instruction[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


def addon_converter() -> types.ModuleType:
    return load_module(ADDON / "options_to_config.py", "needlecare_addon_options")


def run_converter(options: dict[str, Any], workdir: Path, extra: str | None = None) -> Path:
    """Run options_to_config.py as run.sh does; the written config's path."""
    options_path = workdir / "options.json"
    options_path.write_text(json.dumps(options), encoding="utf-8")
    out = workdir / "needlecare.yaml"
    args = [sys.executable, str(ADDON / "options_to_config.py"), str(options_path), str(out)]
    if extra is not None:
        extra_path = workdir / "extra.yaml"
        extra_path.write_text(extra, encoding="utf-8")
        args += ["--extra", str(extra_path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert 0 == result.returncode, result.stderr
    return out


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


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = load_yaml(COMPOSE)["services"]
    return services


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


# --- systemd -----------------------------------------------------------------------


def unit_settings(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment in a unit file."""
    section = ""
    found = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` passes without a warning.

    verify also checks that ExecStart's program exists. The unit names
    /opt/needlecare/bin/needlecare, where INSTALL.md puts it; this machine has the
    package in the test's own virtualenv, so a temporary copy of the unit points
    ExecStart there. Nothing else in the copy differs.
    """
    analyze = ensure_program("systemd-analyze", "systemd")
    text = UNIT.read_text(encoding="utf-8")
    assert "ExecStart=/opt/needlecare/bin/needlecare run " in text
    installed = Path(sys.executable).parent / "needlecare"
    assert installed.is_file()
    copy = tmp_path / "needlecare.service"
    copy.write_text(
        text.replace("/opt/needlecare/bin/needlecare", str(installed)), encoding="utf-8"
    )
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert 0 == result.returncode, result.stderr
    assert "" == result.stdout + result.stderr  # "ignoring" warnings would show here


def test_systemd_unit_is_hardened() -> None:
    """A dedicated user, a read-only system, restart on failure, and no watchdog.

    The daemon does not speak sd_notify, so there is no WatchdogSec and no Type=notify.
    """
    settings = unit_settings(UNIT)
    service = {(key, value) for section, key, value in settings if section == "Service"}
    keys = {key for key, _ in service}
    assert ("DynamicUser", "yes") in service or any(
        key == "User" and value not in {"", "root"} for key, value in service
    )
    for required in (
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("StateDirectory", "needlecare"),
        ("Restart", "on-failure"),
    ):
        assert required in service, required
    assert "RestartSec" in keys
    assert "WatchdogSec" not in keys
    assert ("Type", "notify") not in service
    assert ("CapabilityBoundingSet", "") in service
    assert ("WantedBy", "multi-user.target") in {
        (key, value) for section, key, value in settings if section == "Install"
    }


# --- Mosquitto ---------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where a broker listens (what the MQTT client factory needs of a broker)."""

    host: str
    port: int


def adapted(text: str, replacements: dict[str, str]) -> str:
    """``text`` with whole lines replaced; each line to replace must be there."""
    lines = text.splitlines()
    for old, new in replacements.items():
        assert old in lines, f"expected the line {old!r}"
        lines = [new if line == old else line for line in lines]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def mosquitto_process(config: Path, port: int, output: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``mosquitto -c config`` until it listens on port; SIGTERM (a clean save) at exit."""
    program = ensure_program("mosquitto", "mosquitto")
    with output.open("ab") as out:
        process = subprocess.Popen([program, "-c", str(config)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not port_in_use("127.0.0.1", port):
            exited = process.poll()
            assert exited is None, f"mosquitto exited {exited}: {output.read_text()}"
            assert time.monotonic() < deadline, f"mosquitto not listening: {output.read_text()}"
            time.sleep(0.02)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class BrokerSetup:
    main_config: Path
    persistence_file: Path
    port: int
    username: str | None
    password: str | None
    compose_healthcheck: bool = False


def drop_in_setup(tmp_path: Path) -> BrokerSetup:
    """deploy/mosquitto/mosquitto.conf in a stand-in for Debian's main file."""
    port = free_port()
    user = os.environ.get("USER") or "root"
    passwd = make_password_file(tmp_path / "passwd", "needlecare", "s3cret")
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    drop_in = adapted(
        MOSQUITTO_DROP_IN.read_text(encoding="utf-8"),
        {
            "listener 1883": f"listener {port} 127.0.0.1",
            "password_file /etc/mosquitto/passwd": f"password_file {passwd}",
        },
    )
    (conf_d / "needlecare.conf").write_text(drop_in, encoding="utf-8")
    # What Debian's /etc/mosquitto/mosquitto.conf says, with this test's paths.
    main = tmp_path / "mosquitto.conf"
    main.write_text(
        f"user {user}\n"
        f"pid_file {tmp_path}/mosquitto.pid\n"
        "persistence true\n"
        f"persistence_location {tmp_path}/\n"
        f"log_dest file {tmp_path}/mosquitto.log\n"
        f"include_dir {conf_d}\n",
        encoding="utf-8",
    )
    return BrokerSetup(main, tmp_path / "mosquitto.db", port, "needlecare", "s3cret")


def compose_setup(tmp_path: Path) -> BrokerSetup:
    """deploy/compose/mosquitto.conf with this test's port and data directory."""
    port = free_port()
    user = os.environ.get("USER") or "root"
    text = adapted(
        MOSQUITTO_COMPOSE.read_text(encoding="utf-8"),
        {
            "listener 1883": f"listener {port} 127.0.0.1",
            "persistence_location /mosquitto/data/": f"persistence_location {tmp_path}/",
        },
    )
    main = tmp_path / "mosquitto.conf"
    main.write_text(f"user {user}\n{text}", encoding="utf-8")
    return BrokerSetup(main, tmp_path / "mosquitto.db", port, None, None, compose_healthcheck=True)


@pytest.mark.parametrize(
    "make_setup", [drop_in_setup, compose_setup], ids=["debian-drop-in", "compose"]
)
def test_mosquitto_config_runs_and_keeps_queued_messages_across_a_restart(
    tmp_path: Path,
    mqtt_client_factory: MqttClientFactory,
    make_setup: Callable[[Path], BrokerSetup],
) -> None:
    """The broker starts with the configuration and listens; a persistent session's queue
    survives a restart (persistence on); with the drop-in, anonymous clients are refused.

    The configuration is the file from deploy/ with only its listener, password file and
    persistence location lines swapped for temporary ones.
    """
    setup = make_setup(tmp_path)
    text = setup.main_config.read_text(encoding="utf-8") + "".join(
        p.read_text(encoding="utf-8") for p in sorted(tmp_path.glob("conf.d/*.conf"))
    )
    for line in ("set_tcp_nodelay true", "persistence true", "max_queued_bytes 0"):
        assert line in text.splitlines()
    autosave = int(re.search(r"^autosave_interval (\d+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert 0 < autosave <= 30
    assert int(re.search(r"^max_queued_messages (\d+)$", text, re.M).group(1)) >= 100_000  # type: ignore[union-attr]
    assert int(re.search(r"^max_inflight_messages (\d+)$", text, re.M).group(1)) > 20  # type: ignore[union-attr]

    endpoint = Endpoint("127.0.0.1", setup.port)
    credentials = {"username": setup.username, "password": setup.password}
    client_id = f"persistent-{uuid.uuid4().hex[:8]}"
    topic = f"needlecare/device/pen1/event/{uuid.uuid4().hex[:6]}"
    log = tmp_path / "mosquitto.out"
    with mosquitto_process(setup.main_config, setup.port, log):
        if setup.username is not None:
            anonymous = mqtt_client_factory(endpoint, check=False)  # type: ignore[arg-type]
            assert "Success" != anonymous.outcome
        if setup.compose_healthcheck:
            # compose.yaml's healthcheck command, with compose's $$ unescaped and our port.
            command = compose_services()["mosquitto"]["healthcheck"]["test"]
            assert "CMD" == command[0]
            args = [arg.replace("$$", "$") for arg in command[1:]]
            args[0] = ensure_program("mosquitto_sub", "mosquitto-clients")
            probe = subprocess.run(
                [*args, "-p", str(setup.port)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert 0 == probe.returncode, probe.stderr
            assert probe.stdout.startswith("mosquitto version")
        subscriber = mqtt_client_factory(
            endpoint,  # type: ignore[arg-type]
            client_id=client_id,
            clean_start=False,
            session_expiry=3600,
            **credentials,
        )
        subscriber.subscribe(topic, qos=1)
        subscriber.close()
        publisher = mqtt_client_factory(endpoint, **credentials)  # type: ignore[arg-type]
        for n in range(3):
            publisher.publish(topic, f"event {n}".encode(), qos=1)
        publisher.close()
    assert setup.persistence_file.is_file(), log.read_text()
    with mosquitto_process(setup.main_config, setup.port, log):
        resumed = mqtt_client_factory(
            endpoint,  # type: ignore[arg-type]
            client_id=client_id,
            clean_start=False,
            session_expiry=3600,
            **credentials,
        )
        assert resumed.session_present
        got = resumed.received.wait_for_count(3)
        assert [b"event 0", b"event 1", b"event 2"] == [m.payload for m in got]


# --- Lovelace ----------------------------------------------------------------------

ENTITY_ID = re.compile(r"\b(?:sensor|binary_sensor|button)\.needlecare_[a-z0-9_]+")


def discovered_entity_ids(profile: str) -> set[str]:
    """``<component>.<object_id>`` of every entity the discovery code makes for profile."""
    ids = set()
    for topic, config in profile_entities(Topics(), profile, None):
        component = topic.split("/")[1]
        ids.add(f"{component}.{config['object_id']}")
    return ids


def card_entity_ids(card_text: str) -> set[str]:
    return set(ENTITY_ID.findall(card_text))


def test_lovelace_card_uses_only_entities_the_discovery_code_creates() -> None:
    """Every entity id in the card is one discovery makes for profile ``alice``; the card
    shows status, recovery day, next window, actives restricted, open prompts and both
    buttons, and lists the prompts from the open_prompts sensor's ``prompts`` attribute."""
    text = CARD.read_text(encoding="utf-8")
    used = card_entity_ids(text)
    made = discovered_entity_ids("alice")
    assert set() == used - made
    for object_id in (
        "sensor.needlecare_alice_status",
        "sensor.needlecare_alice_recovery_day",
        "sensor.needlecare_alice_next_window_start",
        "binary_sensor.needlecare_alice_actives_restricted",
        "sensor.needlecare_alice_open_prompts",
        "button.needlecare_alice_acknowledge_all",
        "button.needlecare_alice_log_professional_session",
    ):
        assert object_id in used
    card = load_yaml(CARD)
    rows = {row["entity"] for row in card["cards"][0]["entities"] if "entity" in row}
    assert rows <= made
    attributes = next(
        c["json_attributes_template"]
        for t, c in profile_entities(Topics(), "alice", None)
        if t.endswith("/open_prompts/config")
    )
    assert "'prompts'" in attributes
    assert "state_attr('sensor.needlecare_alice_open_prompts', 'prompts')" in text


def render_template(url: str, token: str, template: str) -> str:
    """Home Assistant's /api/template (plain text, so not through the JSON helper)."""
    request = urllib.request.Request(  # noqa: S310 (http on loopback)
        f"{url}/api/template",
        data=json.dumps({"template": template}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=TIMEOUT) as response:
        return str(response.read().decode("utf-8"))


@pytest.mark.e2e
def test_lovelace_card_works_against_a_real_home_assistant(
    homeassistant: Any,
    ha_mosquitto: Any,
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    """With a real daemon feeding Home Assistant 2024.3.3: every entity of the card exists
    and is available, the markdown card's template renders the open prompts' titles,
    and the card's Acknowledge-all button empties them (hiding the conditional card).

    The card is for ``alice``; the test uses a profile of its own (the shared Home
    Assistant serves other tests too), replacing ``needlecare_alice_`` in the card.
    """
    profile = f"card{uuid.uuid4().hex[:8]}"
    text = CARD.read_text(encoding="utf-8").replace("needlecare_alice_", f"needlecare_{profile}_")
    card = yaml.safe_load(text)
    daemon = daemon_factory(
        ha_mosquitto,
        mqtt={"client_id": f"needlecare-{profile}", "session_expiry_s": 60},
        homeassistant={"url": homeassistant.url, "token": homeassistant.token},
        profiles={profile: {"timezone": "Europe/Berlin"}},
        devices={f"pen_{profile}": {"owner": profile}},
    ).start()
    entities = card_entity_ids(text)

    def available() -> bool:
        states = [homeassistant.state(e) for e in entities]
        return all(s is not None and s["state"] != "unavailable" for s in states)

    wait_until(available, timeout=60, what=f"the card's entities {sorted(entities)}")
    prompts_sensor = f"sensor.needlecare_{profile}_open_prompts"
    assert "0" == homeassistant.state(prompts_sensor)["state"]

    daemon.cli("log-session", "--profile", profile)
    wait_until(
        lambda: homeassistant.state(prompts_sensor)["state"] not in {"0", "unavailable"},
        timeout=60,
        what="open prompts after a session",
    )
    prompts = homeassistant.state(prompts_sensor)["attributes"]["prompts"]
    assert prompts
    markdown = card["cards"][1]["card"]["content"]
    rendered = render_template(homeassistant.url, homeassistant.token, markdown)
    for prompt in prompts:
        assert f"**{prompt['title']}** (due " in rendered
    assert len(prompts) == rendered.count("\n- ") + rendered.startswith("- ")

    ack_all = next(e for e in entities if e.endswith("_acknowledge_all"))
    homeassistant.call_service("button", "press", {"entity_id": ack_all})
    wait_until(
        lambda: homeassistant.state(prompts_sensor)["state"] == "0",
        timeout=60,
        what="no open prompts after Acknowledge all",
    )
    assert 0 == daemon.stop()


# --- the container image -------------------------------------------------------------

BUILD_TOOLS = ("gcc", "cc", "make", "build-essential", "python3-dev", "python3-pip", "python3-venv")


def test_containerfile_is_multi_stage_slim_non_root_with_a_healthcheck() -> None:
    """Structure only (the build itself is the e2e test below): a build stage and a
    runtime stage; the runtime runs as a non-root user, has a HEALTHCHECK that runs the
    readiness probe, installs no build tools and no pip; nothing is fetched with ADD."""
    parsed = instructions(CONTAINERFILE)
    assert not any(keyword == "ADD" for keyword, _ in parsed)
    assert parsed[0][0] == "ARG"
    assert "BASE_IMAGE=" in parsed[0][1]
    build, runtime = stages(parsed)
    assert build[0][1].endswith(" AS build")
    assert "--from=build" in " ".join(args for keyword, args in runtime if keyword == "COPY")
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert 1 == len(users)
    assert users[0].split(":")[0] not in {"root", "0"}
    healthchecks = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    assert 1 == len(healthchecks)
    assert "CMD needlecare sessions --json" in healthchecks[0]
    runtime_runs = " ".join(args for keyword, args in runtime if keyword == "RUN")
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", runtime_runs), tool
    assert "pip uninstall -y pip" in " ".join(args for keyword, args in build if keyword == "RUN")
    cmd = [args for keyword, args in runtime if keyword == "CMD"]
    assert ['["needlecare", "run"]'] == cmd
    subprocess.run(["bash", "-n", str(BUILD_SCRIPT)], check=True, timeout=30)
    assert os.access(BUILD_SCRIPT, os.X_OK)


# This machine's podman (Debian 12: podman 4.3, crun 1.8) fails to start any container:
# crun refuses the host's hybrid cgroup layout ("cgroups in hybrid mode not supported")
# and, as root without CAP_SYS_RESOURCE, podman's default rlimits (nofile and nproc
# 1048576) cannot be set. runc with lower limits works: a containers.conf for podman
# (through CONTAINERS_CONF), harmless on ordinary hosts too.
SANDBOX_CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""
IMAGE = "localhost/needlecare:deploy-test"
SYSTEMD_IMAGE = "localhost/needlecare-systemd:deploy-test"
BUILD_TIMEOUT = 290.0  # bounded below 5 minutes; a cached base makes it about one


def podman(
    *args: str, env: dict[str, str], check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if check:
        assert 0 == result.returncode, f"podman {' '.join(args)}: {result.stderr[-3000:]}"
    return result


def prune_old_images(env: dict[str, str]) -> None:
    """Drop untagged images (earlier builds, their stages) older than a day.

    Every change to service/ makes new layers; the recent ones are the build cache that
    keeps a rebuild short, the older ones only fill the disk.
    """
    podman("image", "prune", "-f", "--filter", "until=24h", env=env, check=False)


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment for podman here: the sandbox containers.conf (see above)."""
    ensure_program("podman", "podman")
    ensure_program("runc", "runc")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(SANDBOX_CONTAINERS_CONF, encoding="utf-8")
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


@pytest.fixture(scope="module")
def needlecare_image(podman_env: dict[str, str]) -> str:
    """The image, built by build.sh --local-base (podman, base made with debootstrap and
    cached under ~/.cache/needlecare); once per module."""
    started = time.monotonic()
    build = subprocess.run(
        [str(BUILD_SCRIPT), "--local-base", "--tag", IMAGE],
        capture_output=True,
        text=True,
        env=podman_env,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert 0 == build.returncode, build.stderr[-5000:] + build.stdout[-3000:]
    print(f"build took {time.monotonic() - started:.0f} s; {build.stderr.splitlines()[-1]}")
    prune_old_images(podman_env)
    return IMAGE


def daemon_config(broker: Any, **changes: Any) -> dict[str, Any]:
    """The compose stack's config, for a daemon on this machine's loopback broker."""
    config: dict[str, Any] = load_yaml(DEPLOY / "compose" / "needlecare.yaml")
    config["mqtt"].update(host=broker.host, port=broker.port)
    del config["homeassistant"]  # no Home Assistant in these tests
    config.update(changes)
    return config


def write_private_dir(path: Path, files: dict[str, tuple[str, int]]) -> Path:
    path.mkdir()
    path.chmod(0o755)
    for name, (text, mode) in files.items():
        (path / name).write_text(text, encoding="utf-8")
        (path / name).chmod(mode)
    return path


def treat(factory: MqttClientFactory, broker: Any, prefix: str) -> None:
    """A session on pen1: started, then ended (QoS 1, acknowledged by the broker)."""
    publisher = factory(broker)
    for event_id, kind in ((f"{prefix}-1", "session_started"), (f"{prefix}-2", "session_ended")):
        publisher.publish(
            "needlecare/device/pen1/event",
            json.dumps({"event_id": event_id, "type": kind}).encode(),
            qos=1,
        )


@pytest.mark.e2e
@pytest.mark.slow
def test_container_image_builds_and_runs_the_daemon(
    tmp_path: Path,
    podman_env: dict[str, str],
    needlecare_image: str,
    mosquitto: Any,
    mqtt_client_factory: MqttClientFactory,
) -> None:
    """The image built by build.sh runs as uid 10001 without pip or a compiler; the daemon
    in it connects to a real Mosquitto, records a session, answers its HEALTHCHECK
    (``podman healthcheck run``) and exits 0 on ``podman stop`` (SIGTERM)."""
    env = podman_env
    inspected = json.loads(podman("image", "inspect", needlecare_image, env=env).stdout)[0]
    assert "10001:10001" == inspected["Config"]["User"]
    # podman shows the healthcheck beside Config (docker inside it); the image keeps it
    # only in the docker format, which build.sh asks podman for.
    healthcheck = inspected.get("Healthcheck") or inspected["Config"]["Healthcheck"]
    assert ["CMD-SHELL", "needlecare sessions --json >/dev/null || exit 1"] == healthcheck["Test"]
    assert inspected["Size"] < 700_000_000  # docs/deploy.md: where the size goes
    version = podman("run", "--rm", needlecare_image, "needlecare", "--version", env=env)
    assert version.stdout.startswith("needlecare, version ")
    tools = podman(
        "run", "--rm", needlecare_image, "sh", "-c", "command -v gcc cc make pip pip3 || true",
        env=env,
    )  # fmt: skip
    assert "" == tools.stdout.strip()

    config = daemon_config(mosquitto)
    config["mqtt"]["client_id"] = f"nc-{uuid.uuid4().hex[:6]}"
    config_dir = write_private_dir(
        tmp_path / "config", {"needlecare.yaml": (yaml.safe_dump(config), 0o644)}
    )
    name = f"needlecare-test-{uuid.uuid4().hex[:8]}"
    watcher = mqtt_client_factory(mosquitto)
    watcher.subscribe("needlecare/status", qos=1)
    podman(
        "run", "-d", "--name", name, "--network", "host",
        "-v", f"{config_dir}:/config:ro", needlecare_image,
        env=env,
    )  # fmt: skip
    try:
        watcher.received.wait_for(lambda ms: any(m.payload == b"online" for m in ms), timeout=60)
        health = podman("healthcheck", "run", name, env=env, check=False)
        assert 0 == health.returncode, health.stdout + health.stderr
        treat(mqtt_client_factory, mosquitto, "c")

        def sessions() -> list[dict[str, Any]]:
            out = podman("exec", name, "needlecare", "sessions", "--json", env=env).stdout
            rows: list[dict[str, Any]] = json.loads(out)
            return rows

        wait_until(lambda: len(sessions()) == 1, timeout=30, what="the session in the store")
        assert "completed" == sessions()[0]["status"]
        podman("stop", "-t", "30", name, env=env, timeout=60)
        state = json.loads(podman("inspect", name, env=env).stdout)[0]["State"]
        assert 0 == state["ExitCode"], podman("logs", name, env=env).stderr[-3000:]
        watcher.received.wait_for(lambda ms: ms[-1].payload == b"offline", timeout=10)
    finally:
        print(podman("logs", name, env=env, check=False).stderr[-4000:])
        podman("rm", "-f", "-v", name, env=env, check=False)


# The needlecare image with systemd as PID 1 and without the image's static user, so
# that DynamicUser allocates a user as on a host. /opt/needlecare/bin/needlecare, the
# unit's ExecStart, is where the image has the package.
SYSTEMD_CONTAINERFILE = """\
ARG IMAGE
FROM ${IMAGE}
USER root
RUN apt-get update \\
 && apt-get install -y --no-install-recommends systemd \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \\
 && userdel needlecare
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
"""


def systemctl(name: str, *args: str, env: dict[str, str]) -> str:
    return podman("exec", name, "systemctl", *args, env=env, check=False).stdout.strip()


@pytest.mark.e2e
@pytest.mark.slow
def test_systemd_unit_runs_the_daemon_hardened_under_systemd(
    tmp_path: Path,
    podman_env: dict[str, str],
    needlecare_image: str,
    mosquitto: Any,
    mqtt_client_factory: MqttClientFactory,
) -> None:
    """deploy/systemd/needlecare.service, unchanged, under systemd 252 (PID 1 of a podman
    container): the daemon starts as a dynamic non-root user with no capabilities, no new
    privileges and a seccomp filter, reads its secrets from the EnvironmentFile, keeps
    its store in the StateDirectory, is restarted after a SIGKILL (Restart=on-failure)
    and stops with exit code 0."""
    env = podman_env
    context = write_private_dir(
        tmp_path / "context", {"Containerfile": (SYSTEMD_CONTAINERFILE, 0o644)}
    )
    podman(
        "build", "--format", "docker", "--build-arg", f"IMAGE={needlecare_image}",
        "-t", SYSTEMD_IMAGE, str(context),
        env=env, timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    prune_old_images(env)
    client_id = f"needlecare-systemd-{uuid.uuid4().hex[:6]}"
    config = daemon_config(mosquitto, store={"path": "/var/lib/needlecare/needlecare.db"})
    etc = write_private_dir(
        tmp_path / "etc",
        {
            "needlecare.yaml": (yaml.safe_dump(config), 0o644),
            # Read by systemd (root) before it drops privileges; the client id proves it.
            "needlecare.env": (f"NEEDLECARE_MQTT__CLIENT_ID={client_id}\n", 0o600),
        },
    )
    name = f"needlecare-systemd-{uuid.uuid4().hex[:8]}"
    watcher = mqtt_client_factory(mosquitto)
    watcher.subscribe("needlecare/status", qos=1)
    podman(
        "run", "-d", "--name", name, "--network", "host", "--systemd=always",
        "-v", f"{UNIT}:/etc/systemd/system/needlecare.service:ro",
        "-v", f"{etc}:/etc/needlecare:ro", SYSTEMD_IMAGE,
        env=env,
    )  # fmt: skip
    try:
        wait_until(
            lambda: systemctl(name, "is-system-running", env=env) in {"running", "degraded"},
            timeout=60,
            what="systemd to boot in the container",
        )
        podman("exec", name, "systemctl", "start", "needlecare", env=env)
        watcher.received.wait_for(lambda ms: any(m.payload == b"online" for m in ms), timeout=30)
        assert f"as {client_id} " in mosquitto.log_tail(50)

        pid = systemctl(name, "show", "-p", "MainPID", "--value", "needlecare", env=env)
        status = podman("exec", name, "cat", f"/proc/{pid}/status", env=env).stdout
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        assert "0" != fields["Uid"].split()[0]
        assert "0000000000000000" == fields["CapEff"]
        assert "1" == fields["NoNewPrivs"]
        assert "2" == fields["Seccomp"]  # a filter is installed

        treat(mqtt_client_factory, mosquitto, "sd")
        cli = ["needlecare", "sessions", "-c", "/etc/needlecare/needlecare.yaml", "--json"]

        def sessions() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = json.loads(
                podman("exec", name, "/opt/needlecare/bin/" + cli[0], *cli[1:], env=env).stdout
            )
            return rows

        wait_until(lambda: len(sessions()) == 1, timeout=30, what="the session in the store")
        owner = podman(
            "exec", name, "stat", "-c", "%u", "/var/lib/private/needlecare/needlecare.db", env=env
        ).stdout.strip()
        assert fields["Uid"].split()[0] == owner
        security = podman(
            "exec", name, "systemd-analyze", "security", "--no-pager", "needlecare",
            env=env, check=False,
        ).stdout  # fmt: skip
        exposure = re.search(r"Overall exposure level for needlecare.service: ([\d.]+)", security)
        assert exposure is not None, security
        print(f"systemd-analyze security: exposure {exposure.group(1)}")
        assert float(exposure.group(1)) <= 2.0

        podman("exec", name, "sh", "-c", f"kill -KILL {pid}", env=env)  # a crash
        wait_until(
            lambda: (
                systemctl(name, "show", "-p", "MainPID", "--value", "needlecare", env=env)
                not in {"0", pid, ""}
            ),
            timeout=30,
            what="systemd to restart the daemon after SIGKILL",
        )
        assert "active" == systemctl(name, "is-active", "needlecare", env=env)

        podman("exec", name, "systemctl", "stop", "needlecare", env=env)
        shown = systemctl(
            name, "show", "-p", "ExecMainStatus", "-p", "Result", "needlecare", env=env
        )
        assert {"ExecMainStatus=0", "Result=success"} == set(shown.splitlines())
        watcher.received.wait_for(lambda ms: ms[-1].payload == b"offline", timeout=10)
    finally:
        logs = podman(
            "exec", name, "journalctl", "-u", "needlecare", "--no-pager", env=env, check=False
        )
        print(logs.stdout[-4000:])
        podman("rm", "-f", "-v", name, env=env, check=False)
