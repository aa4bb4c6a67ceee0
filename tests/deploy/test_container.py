"""The container image: the Containerfile's structure, and the image built and run."""

import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.daemon import wait_until
from support.deploy import (
    BUILD_SCRIPT,
    CONTAINERFILE,
    daemon_config,
    instructions,
    podman,
    stages,
    treat,
    write_private_dir,
)
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.integration


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
    # Every documented command works in the image: report needs the 'report' extra.
    assert '"/src[report]"' in " ".join(args for keyword, args in build if keyword == "RUN")
    cmd = [args for keyword, args in runtime if keyword == "CMD"]
    assert ['["needlecare", "run"]'] == cmd
    subprocess.run(["bash", "-n", str(BUILD_SCRIPT)], check=True, timeout=30)
    assert os.access(BUILD_SCRIPT, os.X_OK)


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
    (``podman healthcheck run``), writes the HTML report (``needlecare report``, whose
    plotting library the image carries) and exits 0 on ``podman stop`` (SIGTERM)."""
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
        report = podman(
            "exec", name, "needlecare", "report", "--profile", "alice", "--out", "/data/r.html",
            env=env, check=False,
        )  # fmt: skip
        assert 0 == report.returncode, report.stderr[-3000:]
        page = podman("exec", name, "head", "-c", "200", "/data/r.html", env=env).stdout
        assert page.lstrip().lower().startswith("<!doctype html>")
        podman("stop", "-t", "30", name, env=env, timeout=60)
        state = json.loads(podman("inspect", name, env=env).stdout)[0]["State"]
        assert 0 == state["ExitCode"], podman("logs", name, env=env).stderr[-3000:]
        watcher.received.wait_for(lambda ms: ms[-1].payload == b"offline", timeout=10)
    finally:
        print(podman("logs", name, env=env, check=False).stderr[-4000:])
        podman("rm", "-f", "-v", name, env=env, check=False)
