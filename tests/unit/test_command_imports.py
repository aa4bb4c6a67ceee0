"""What ``needlecare run`` imports before it starts: the command line and the start path.

The daemon's own start, up to its retained ``online``, is checked against a real
broker in tests/integration/test_start_imports.py; these checks need no broker.
"""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import json
import os
import subprocess
import sys

import click

from needlecare.cli.main import LAZY_COMMANDS, cli
from support.start_path import NOT_BEFORE_CONNECT


def modules_after(code: str) -> set[str]:
    """``sys.modules`` of a fresh interpreter after ``code``, without NEEDLECARE_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("NEEDLECARE_")}
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


def under(modules: set[str], names: frozenset[str]) -> set[str]:
    return {m for m in modules for n in names if m == n or m.startswith(f"{n}.")}


class TestRunImports:
    def test_the_run_command_and_its_start_path_leave_the_rest_unimported(self) -> None:
        """Importing the command line and app.run loads none of the modules above."""
        modules = modules_after("import needlecare.cli.main, needlecare.app.run")
        assert {"needlecare.app.daemon", "needlecare_integrations.mqtt"} <= modules
        assert set() == under(modules, NOT_BEFORE_CONNECT)

    def test_a_config_with_environment_variables_does_load_pydantic_settings(self) -> None:
        """The control: the probe sees pydantic-settings once a variable needs parsing."""
        code = (
            "from needlecare.config import load_config\n"
            "load_config(None, {'NEEDLECARE_MQTT__PORT': '1884'})"
        )
        assert "pydantic_settings" in modules_after(code)


class TestLazyCommands:
    def test_every_listed_command_loads_under_its_name(self) -> None:
        """Each entry of LAZY_COMMANDS names a click command called as listed."""
        ctx = click.Context(cli)
        for name in LAZY_COMMANDS:
            command = cli.get_command(ctx, name)
            assert isinstance(command, click.Command), name
            assert name == command.name

    def test_the_group_lists_the_lazy_commands_beside_its_own(self) -> None:
        """--help and completion see every command, loaded or not."""
        ctx = click.Context(cli)
        assert {*LAZY_COMMANDS, "run", "check-config"} == set(cli.list_commands(ctx))
