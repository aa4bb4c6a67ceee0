"""``needlecare``: run the daemon and inspect or feed its journal."""

import json
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from pydantic import ValidationError

from needlecare.cli import output
from needlecare.cli.report_command import report_command
from needlecare.config import ConfigError, NeedlecareConfig, format_problems, load_config
from needlecare.domain.events import COMMANDS, describe_validation_error, json_schemas

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = "YAML config file (default: $NEEDLECARE_CONFIG, else built-in defaults)."


def config_option(func: F) -> F:
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help=CONFIG_HELP,
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")(func)


def load_or_exit(config_path: Path | None) -> NeedlecareConfig:
    """Load the config, or print every problem and exit 1 (no traceback)."""
    try:
        return load_config(config_path)
    except ConfigError as error:
        click.echo(format_problems(error), err=True)
        sys.exit(1)


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
    found = _reader(config).sessions(profile)
    if as_json:
        click.echo(output.to_json(output.session_row(s) for s in found))
        return
    rows = [
        (
            s.id,
            s.profile,
            s.device_id or s.source,
            s.setting,
            _local(config, s.profile, s.started_at),
            _local(config, s.profile, s.ended_at),
            s.status.value,
            s.needle_depth_mm,
        )
        for s in found
    ]
    headers = ("id", "profile", "device", "setting", "started", "ended", "status", "depth mm")
    click.echo(output.table(headers, rows))


REMINDER_STATUSES = ("pending", "sent", "late", "acked", "snoozed", "missed", "cancelled")


@cli.command()
@config_option
@click.option("--profile", default=None, help="Only this profile's reminders.")
@click.option(
    "--status", type=click.Choice(REMINDER_STATUSES), default=None, help="Only this status."
)
@json_option
def reminders(
    config_path: Path | None, profile: str | None, status: str | None, as_json: bool
) -> None:
    """List reminders with due time, channels and status."""
    config = load_or_exit(config_path)
    found = _reader(config).reminders.listing(profile, status)
    if as_json:
        click.echo(output.to_json(output.reminder_row(r) for r in found))
        return
    rows = [
        (
            r.id,
            r.profile,
            r.kind,
            _local(config, r.profile, r.due_at),
            ",".join(c.value for c in r.channels),
            r.status.value,
            r.title,
        )
        for r in found
    ]
    click.echo(output.table(("id", "profile", "kind", "due", "channels", "status", "title"), rows))


@cli.command()
@config_option
@click.argument("reminder_id")
@click.option(
    "--wait", type=float, default=10.0, show_default=True, help="Seconds to wait for the daemon."
)
def ack(config_path: Path | None, reminder_id: str, wait: float) -> None:
    """Acknowledge a reminder everywhere (mirror, Home Assistant)."""
    _send_reminder_command(config_path, reminder_id, {"action": "ack"}, wait)


@cli.command()
@config_option
@click.argument("reminder_id")
@click.option(
    "--minutes", type=click.IntRange(1, 1440), required=True, help="Deliver again in N minutes."
)
@click.option(
    "--wait", type=float, default=10.0, show_default=True, help="Seconds to wait for the daemon."
)
def snooze(config_path: Path | None, reminder_id: str, minutes: int, wait: float) -> None:
    """Snooze a reminder for N minutes."""
    _send_reminder_command(config_path, reminder_id, {"action": "snooze", "minutes": minutes}, wait)


def _send_reminder_command(
    config_path: Path | None, reminder_id: str, command: dict[str, Any], wait: float
) -> None:
    from needlecare.cli.commands import send_command  # noqa: PLC0415

    config = load_or_exit(config_path)
    reminder = _reader(config).reminders.get(reminder_id)
    if reminder is None:
        raise click.BadParameter(f"no reminder {reminder_id!r}", param_hint="REMINDER_ID")
    body = {**command, "reminder_id": reminder_id, "event_id": f"cli-{uuid.uuid4().hex}"}
    sys.exit(send_command(config, reminder.profile, body, wait=wait))


@cli.command()
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include sent and cancelled deliveries.")
@json_option
def outbox(config_path: Path | None, show_all: bool, as_json: bool) -> None:
    """Show deliveries waiting to go out, and why they wait."""
    config = load_or_exit(config_path)
    items = _reader(config).outbox.listing(None if show_all else "pending")
    if as_json:
        click.echo(output.to_json(output.record(i) for i in items))
        return
    rows = [
        (
            i.id,
            i.channel,
            output.printable(i.target, 40),
            i.status.value,
            i.not_before,
            i.attempts,
            i.last_error,
        )
        for i in items
    ]
    click.echo(
        output.table(
            ("id", "channel", "target", "status", "not before", "tries", "last error"), rows
        )
    )


@cli.command()
@config_option
@click.option("--profile", default=None, help="Only this profile's windows.")
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="File to write."
)
def calendar(config_path: Path | None, profile: str | None, out: Path | None) -> None:
    """Export next-session windows as an iCalendar (.ics) file."""
    from needlecare.app.windows import window_events  # noqa: PLC0415
    from needlecare.calendar_export import to_ics  # noqa: PLC0415
    from needlecare.clock import SystemClock  # noqa: PLC0415
    from needlecare.domain.protocol import build_protocols  # noqa: PLC0415

    config = load_or_exit(config_path)
    events = window_events(_reader(config).sessions(profile), build_protocols(config.protocol))
    text = to_ics(events, now=SystemClock().now())
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8", newline="")
        click.echo(f"wrote {len(events)} window(s) to {out}", err=True)


@cli.command()
@config_option
@json_option
def status(config_path: Path | None, as_json: bool) -> None:
    """Connection state, pending reminders, outbox backlog and the latest events."""
    from needlecare.cli.status import collect_status, render_status  # noqa: PLC0415

    config = load_or_exit(config_path)
    report = collect_status(config, _reader(config))
    click.echo(json.dumps(report, indent=2) if as_json else render_status(report))


@cli.command("dead-letters")
@config_option
@json_option
def dead_letters(config_path: Path | None, as_json: bool) -> None:
    """List rejected inbound messages with the reasons."""
    config = load_or_exit(config_path)
    letters = _reader(config).dead_letters()
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
    reader = _reader(config)
    wanted = (table,) if table else EXPORT_TABLES
    sources: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "sessions": lambda: [
            output.session_row(s) for s in output.progress(reader.sessions(), "sessions")
        ],
        "skin_checks": lambda: [
            output.record(c) for c in output.progress(reader.skin_checks(), "skin checks")
        ],
        "reminders": lambda: [
            output.reminder_row(r)
            for r in output.progress(reader.reminders.listing(None, None), "reminders")
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


@cli.command("log-session")
@config_option
@click.option("--profile", required=True, help="Whose session it was.")
@click.option(
    "--setting", type=click.Choice(["home", "professional"]), default="home", show_default=True
)
@click.option(
    "--at", "at_text", default=None, help="When it ended: RFC 3339, or local 'YYYY-MM-DD HH:MM'."
)
@click.option("--depth", type=float, default=None, help="Needle depth in mm.")
@click.option("--duration", "duration_min", type=int, default=None, help="Length in minutes.")
@click.option(
    "--wait", type=float, default=10.0, show_default=True, help="Seconds to wait for the daemon."
)
def log_session(
    config_path: Path | None,
    profile: str,
    setting: str,
    at_text: str | None,
    depth: float | None,
    duration_min: int | None,
    wait: float,
) -> None:
    """Record a session by hand (e.g. at a dermatologist's).

    The session is sent to the daemon as a ``log_session`` command, the same way
    Home Assistant's button does, so the daemon stays the only writer.
    """
    from needlecare.cli.commands import send_command  # noqa: PLC0415

    config = load_or_exit(config_path)
    if profile not in config.profiles:
        raise click.BadParameter(f"unknown profile {profile!r}", param_hint="--profile")
    command: dict[str, Any] = {
        "action": "log_session",
        "setting": setting,
        "event_id": f"cli-{uuid.uuid4().hex}",
    }
    if at_text is not None:
        command["timestamp"] = _parse_at(
            at_text, ZoneInfo(config.profiles[profile].timezone)
        ).isoformat()
    if depth is not None:
        command["needle_depth_mm"] = depth
    if duration_min is not None:
        command["duration_s"] = duration_min * 60
    try:
        COMMANDS.validate_json(json.dumps(command))
    except ValidationError as error:
        raise click.UsageError(describe_validation_error(error)) from error
    sys.exit(send_command(config, profile, command, wait=wait))


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


def _reader(config: NeedlecareConfig) -> Any:
    from needlecare_integrations.store import SqliteStore, StoreError  # noqa: PLC0415

    try:
        return SqliteStore.open_read_only(config.store.path)
    except StoreError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(4)


def _local(config: NeedlecareConfig, profile: str, moment: datetime | None) -> datetime | None:
    if moment is None or profile not in config.profiles:
        return moment
    return moment.astimezone(ZoneInfo(config.profiles[profile].timezone))


def _parse_at(text: str, zone: ZoneInfo) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise click.BadParameter(f"not a date and time: {text!r}", param_hint="--at") from error
    # A time without an offset is the profile's local time: what a person types.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


cli.add_command(report_command)


def main() -> None:
    cli()
