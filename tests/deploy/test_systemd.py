"""The systemd unit: verified, hardened, and run under a real systemd in a container."""

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from needlecare.config import load_config
from support.daemon import wait_until
from support.deploy import (
    BUILD_TIMEOUT,
    ROOT,
    SYSTEMD_IMAGE,
    UNIT,
    daemon_config,
    ensure_program,
    podman,
    prune_old_images,
    treat,
    write_private_dir,
)
from support.mosquitto import MqttClientFactory

pytestmark = pytest.mark.integration


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


def test_documentation_is_a_link_that_resolves_anywhere() -> None:
    """Documentation= is an https link to the install guide in the repository, not a
    file:// path that exists only where the docs were copied."""
    [link] = [value for section, key, value in unit_settings(UNIT) if key == "Documentation"]
    assert link.startswith("https://")
    assert link.endswith("/deploy/systemd/INSTALL.md")
    assert (ROOT / "deploy" / "systemd" / "INSTALL.md").is_file()


def test_quick_start_config_puts_the_store_in_the_state_directory(tmp_path: Path) -> None:
    """INSTALL.md's command that writes /etc/needlecare/needlecare.yaml, run as written
    (minus sudo, into a temporary file): the config loads and its store.path is
    /var/lib/needlecare/needlecare.db, where the service may write."""
    text = (ROOT / "deploy" / "systemd" / "INSTALL.md").read_text(encoding="utf-8")
    command = re.search(r"^(sed .*\\\n.*needlecare\.yaml >/dev/null)$", text, re.MULTILINE)
    assert command is not None
    target = tmp_path / "needlecare.yaml"
    shell = command.group(1).replace("sudo tee /etc/needlecare/needlecare.yaml", f"tee {target}")
    subprocess.run(["bash", "-c", shell], cwd=ROOT, check=True, timeout=30)
    config = load_config(target, {})
    assert Path("/var/lib/needlecare/needlecare.db") == config.store.path


def test_exit_codes_that_need_a_person_are_not_restarted() -> None:
    """A config error (1), refused credentials (3) and a store held by another daemon (6)."""
    [codes] = [v for _, key, v in unit_settings(UNIT) if key == "RestartPreventExitStatus"]
    assert {"1", "3", "6"} == set(codes.split())


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
