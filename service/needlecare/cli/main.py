"""``needlecare``: run the daemon and inspect or feed its journal."""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from needlecare.cli import output
from needlecare.cli.common import config_option, json_option, load_or_exit, local_time, reader
from needlecare.cli.reminder_commands import REMINDER_COMMANDS
from needlecare.cli.report_command import report_command
from needlecare.cli.session_commands import SESSION_COMMANDS
from needlecare.domain.events import json_schemas


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="needlecare")
def cli() -> None:
    """Needlecare: microneedling sessions in, recovery reminders out."""


@cli.command("check-config")
@config_option
def check_config(config_path: Path | None) -> None:
    """Validate a config; exit 0, or exit 1 naming each bad field."""
    config = load_or_exit(config_path)
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
    from needlecare.app.run import run_daemon  # noqa: PLC0415 - keeps other commands light

    config = load_or_exit(config_path)
    sys.exit(run_daemon(config, with_broker=broker))


@cli.command()
def schema() -> None:
    """Print the JSON Schema of every inbound payload."""
    click.echo(json.dumps(json_schemas(), indent=2))


@cli.command("config-reference")
def config_reference_command() -> None:
    """Print every configuration key with its type, default and meaning (Markdown)."""
    from needlecare.cli.config_doc import config_reference  # noqa: PLC0415

    click.echo(config_reference(), nl=False)


@cli.command()
@config_option
def protocol(config_path: Path | None) -> None:
    """Print the effective care protocol (defaults plus the config's changes) as Markdown."""
    from needlecare.cli.protocol_doc import NOT_MEDICAL_ADVICE, protocol_markdown  # noqa: PLC0415
    from needlecare.domain.protocol import build_protocols  # noqa: PLC0415

    config = load_or_exit(config_path)
    built = build_protocols(config.protocol)
    click.echo(NOT_MEDICAL_ADVICE + "\n")
    click.echo(protocol_markdown(built["home"], title="Home sessions"))
    click.echo(protocol_markdown(built["professional"], title="Professional sessions"), nl=False)


@cli.command()
@config_option
@click.option("--profile", default=None, help="Only this profile's sessions.")
@json_option
def sessions(config_path: Path | None, profile: str | None, as_json: bool) -> None:
    """List recorded sessions."""
    config = load_or_exit(config_path)
    found = reader(config).sessions(profile)
    if as_json:
        click.echo(output.to_json(output.session_row(s) for s in found))
        return
    rows = [
        (
            s.id,
            s.profile,
            s.device_id or s.source,
            s.setting,
            local_time(config, s.profile, s.started_at),
            local_time(config, s.profile, s.ended_at),
            s.status.value,
            s.needle_depth_mm,
        )
        for s in found
    ]
    headers = ("id", "profile", "device", "setting", "started", "ended", "status", "depth mm")
    click.echo(output.table(headers, rows))


@cli.command("dead-letters")
@config_option
@json_option
def dead_letters(config_path: Path | None, as_json: bool) -> None:
    """List rejected inbound messages with the reasons."""
    config = load_or_exit(config_path)
    store = reader(config)
    letters = store.dead_letters()
    dropped = store.retention.dropped_dead_letters()
    if as_json:
        click.echo(output.to_json(output.dead_letter_row(d) for d in letters))
        return
    rows = [
        (
            d.id,
            d.received_at,
            output.printable(d.topic, 48),
            d.reason,
            output.printable(d.payload_excerpt, 40),
        )
        for d in letters
    ]
    click.echo(output.table(("id", "received", "topic", "reason", "payload"), rows))
    if dropped:
        limit = config.retention.dead_letters_max
        click.echo(f"{dropped} older dead letter(s) dropped (retention keeps the newest {limit})")


EXPORT_TABLES = ("sessions", "skin_checks", "reminders")


@cli.command()
@config_option
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@click.option(
    "--table",
    type=click.Choice(EXPORT_TABLES),
    default=None,
    help="One table only (csv exports one table; default sessions).",
)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="File to write."
)
def export(config_path: Path | None, fmt: str, table: str | None, out: Path | None) -> None:
    """Export sessions, skin checks and reminders as JSON or CSV."""
    config = load_or_exit(config_path)
    store = reader(config)
    wanted = (table,) if table else EXPORT_TABLES
    sources: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "sessions": lambda: [
            output.session_row(s) for s in output.progress(store.sessions(), "sessions")
        ],
        "skin_checks": lambda: [
            output.record(c) for c in output.progress(store.skin_checks(), "skin checks")
        ],
        "reminders": lambda: [
            output.reminder_row(r)
            for r in output.progress(store.reminders.listing(None, None), "reminders")
        ],
    }
    data = {name: sources[name]() for name in wanted}
    if fmt == "csv":
        text = output.to_csv(data[table or "sessions"])
    else:
        text = json.dumps(data[table] if table else data, indent=2, ensure_ascii=False)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@cli.command()
@config_option
@click.option("--device", default=None, help="Device id (default: the first configured).")
@click.option("--mirror", default=None, help="Mirror id (default: the first configured).")
@click.option("--pace", type=float, default=1.0, show_default=True, help="Seconds between events.")
@click.option("--depth", type=float, default=0.5, show_default=True, help="Needle depth in mm.")
def simulate(
    config_path: Path | None, device: str | None, mirror: str | None, pace: float, depth: float
) -> None:
    """Publish a realistic session (device and mirror events) to the broker."""
    from needlecare.cli.simulate import simulate_session  # noqa: PLC0415

    config = load_or_exit(config_path)
    sys.exit(simulate_session(config, device=device, mirror=mirror, pace=pace, depth=depth))


for command in (*REMINDER_COMMANDS, *SESSION_COMMANDS, report_command):
    cli.add_command(command)


def main() -> None:
    cli()
