"""Commands that read the journal: sessions, dead-letters, export; and simulate."""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from needlecare.cli import output
from needlecare.cli.common import (
    check_profile,
    config_option,
    display_zone,
    json_option,
    load_or_exit,
    local_time,
    reader,
)


@click.command()
@config_option
@click.option("--profile", default=None, help="Only this profile's sessions.")
@json_option
def sessions(config_path: Path | None, profile: str | None, as_json: bool) -> None:
    """List recorded sessions.

    Times are shown in the profile's zone; --json gives RFC 3339 in UTC.
    """
    config = load_or_exit(config_path)
    check_profile(config, profile)
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


@click.command("dead-letters")
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
            d.received_at.astimezone(display_zone(config)),
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


EXPORT_TABLES = ("sessions", "skin_checks", "products", "reminders")


@click.command()
@config_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv"]),
    default="json",
    show_default=True,
    help="json: one object (a list with --table); csv: one table.",
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
    """Export sessions, skin checks, products applied and reminders as JSON or CSV.

    JSON without --table is one object with a list per table; with --table, a list.
    CSV is one table (default sessions) with plain cells: lists joined with "; ",
    booleans true/false, times RFC 3339 with their offset.
    """
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
        "products": lambda: [
            output.record(p) for p in output.progress(store.products(), "products")
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


@click.command()
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


JOURNAL_COMMANDS = (sessions, dead_letters, export, simulate)
