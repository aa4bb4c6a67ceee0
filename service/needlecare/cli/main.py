"""``needlecare``: run the daemon and inspect or feed its journal.

Only ``run`` and ``check-config`` live here. Every other command is imported from
its module when it is invoked (or listed by ``--help``), so ``needlecare run``
loads none of their output formatting, store readers or reports before the
daemon says ``online`` (docs/PERFORMANCE.md, Start).
"""

import gc
import importlib
import sys
from pathlib import Path
from typing import Final

import click

from needlecare.cli.common import config_option, config_warnings, load_or_exit

# Command name -> "module:attribute" under needlecare.cli.
LAZY_COMMANDS: Final = {
    "ack": "reminder_commands:ack",
    "backup": "store_commands:backup_command",
    "calendar": "reminder_commands:calendar",
    "config-reference": "doc_commands:config_reference_command",
    "dead-letters": "journal_commands:dead_letters",
    "export": "journal_commands:export",
    "log-session": "session_commands:log_session",
    "outbox": "reminder_commands:outbox",
    "protocol": "doc_commands:protocol",
    "reminders": "reminder_commands:reminders",
    "report": "report_command:report_command",
    "restore": "store_commands:restore_command",
    "schema": "doc_commands:schema",
    "sessions": "journal_commands:sessions",
    "simulate": "journal_commands:simulate",
    "snooze": "reminder_commands:snooze",
    "status": "reminder_commands:status",
    "void-session": "session_commands:void_session",
}


class _Commands(click.Group):
    """Loads each command on first use; lists each with its whole first paragraph.

    Help text is wrapped, never cut off with '...'.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[cmd_name].split(":")
            loaded = getattr(importlib.import_module(f"needlecare.cli.{module}"), attribute)
            if not isinstance(loaded, click.Command):
                msg = f"needlecare.cli.{module}.{attribute} is not a command"
                raise TypeError(msg)
            command = loaded
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="needlecare")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Needlecare: microneedling sessions in, recovery reminders out."""
    if ctx.invoked_subcommand != "run":
        gc.enable()  # see main(); the daemon turns it back on once it has started


@cli.command("check-config")
@config_option
def check_config(config_path: Path | None) -> None:
    """Validate a config: exit 0, or exit 1 listing every problem in plain words.

    Unknown keys get a did-you-mean suggestion; the value under an unknown key is
    never printed (a misspelled password is still a password). A config without
    profiles or devices passes with a warning.
    """
    config = load_or_exit(config_path)
    for warning in config_warnings(config):
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"configuration OK: {len(config.profiles)} profile(s), {len(config.devices)} device(s),"
        f" {len(config.mirrors)} mirror(s); broker {config.mqtt.host}:{config.mqtt.port};"
        f" store {config.store.path}"
    )


@cli.command()
@config_option
@click.option(
    "--broker",
    is_flag=True,
    help="For a trial: start a local Mosquitto on mqtt.host:port unless one already listens.",
)
def run(config_path: Path | None, broker: bool) -> None:
    """Run the daemon until SIGTERM or Ctrl-C."""
    config = load_or_exit(config_path)
    from needlecare.app.run import run_daemon  # noqa: PLC0415 - keeps other commands light

    sys.exit(run_daemon(config, with_broker=broker))


def main() -> None:
    """The ``needlecare`` command.

    The garbage collector is off while the command's modules load (``python -m
    needlecare`` turns it off even before this module's own imports): a start
    allocates tens of thousands of objects that live as long as the process, and
    the collector's passes over them took some 10 % of the way to the daemon's
    ``online``. Every command but ``run`` turns it back on once its arguments are
    parsed; the daemon does once it has started, after one full collection.
    """
    gc.disable()
    cli()
