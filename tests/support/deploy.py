"""Shared by the tests of deploy/: paths, program installs, Containerfile parsing,
the add-on's converter, and podman (the image built once per test session)."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.mosquitto import MqttClientFactory

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


@pytest.fixture(scope="session")
def podman_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment for podman here: the sandbox containers.conf (see above)."""
    ensure_program("podman", "podman")
    ensure_program("runc", "runc")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(SANDBOX_CONTAINERS_CONF, encoding="utf-8")
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


@pytest.fixture(scope="session")
def needlecare_image(podman_env: dict[str, str]) -> str:
    """The image, built by build.sh --local-base (podman, base made with debootstrap and
    cached under ~/.cache/needlecare); once per test session."""
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


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = load_yaml(COMPOSE)["services"]
    return services
