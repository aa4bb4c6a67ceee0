"""Commands about reminders and their deliveries: list, ack, snooze, outbox, calendar, status."""

import json
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from needlecare.cli import output
from needlecare.cli.common import (
    check_profile,
    config_option,
    display_zone,
    json_object_option,
    json_option,
    load_or_exit,
    local_time,
    reader,
    wait_option,
)
from needlecare.config import NeedlecareConfig
from needlecare.domain.reminders import Reminder, ReminderStatus

REMINDER_STATUSES = ("pending", "sent", "late", "acked", "snoozed", "missed", "cancelled")


@click.command()
@config_option
@click.option("--profile", default=None, help="Only this profile's reminders.")
@click.option(
    "--status", type=click.Choice(REMINDER_STATUSES), default=None, help="Only this status."
)
@json_option
def reminders(
    config_path: Path | None, profile: str | None, status: str | None, as_json: bool
) -> None:
    """List reminders with due time, channels and status.

    Due times are shown in the profile's zone; --json gives RFC 3339 in UTC.
    """
    config = load_or_exit(config_path)
    check_profile(config, profile)
    found = reader(config).reminders.listing(profile, status)
    if as_json:
        click.echo(output.to_json(output.reminder_row(r) for r in found))
        return
    rows = [
        (
            r.id,
            r.profile,
            r.kind,
            local_time(config, r.profile, r.due_at),
            ",".join(c.value for c in r.channels),
            r.status.value,
            r.title,
        )
        for r in found
    ]
    click.echo(output.table(("id", "profile", "kind", "due", "channels", "status", "title"), rows))


@click.command()
@config_option
@click.argument("reminder_id")
@wait_option
def ack(config_path: Path | None, reminder_id: str, wait: float) -> None:
    """Acknowledge a reminder everywhere (mirror, Home Assistant, phone).

    Goes through the running daemon and waits until it has recorded the ack.
    A reminder acknowledged before is reported as such and nothing is sent; with
    no daemon running on the store nothing is sent and the exit code is 7.
    """
    config = load_or_exit(config_path)
    reminder = _reminder_or_exit(config, reminder_id)
    if reminder.status is ReminderStatus.ACKED:
        click.echo(f"reminder {reminder_id} was already acknowledged; nothing to do")
        return
    if reminder.status is ReminderStatus.CANCELLED:
        raise click.ClickException(
            f"reminder {reminder_id} was cancelled; there is nothing to acknowledge"
        )
    _send(config, reminder, {"action": "ack"}, wait)


@click.command()
@config_option
@click.argument("reminder_id")
@click.option(
    "--minutes", type=click.IntRange(1, 1440), required=True, help="Deliver again in N minutes."
)
@wait_option
def snooze(config_path: Path | None, reminder_id: str, minutes: int, wait: float) -> None:
    """Snooze a reminder for N minutes (1 to 1440).

    Goes through the running daemon and waits until it has recorded the snooze;
    with no daemon running on the store nothing is sent and the exit code is 7.
    """
    config = load_or_exit(config_path)
    reminder = _reminder_or_exit(config, reminder_id)
    if reminder.status in (ReminderStatus.ACKED, ReminderStatus.CANCELLED, ReminderStatus.MISSED):
        raise click.ClickException(
            f"reminder {reminder_id} is {reminder.status.value}; it cannot be snoozed"
        )
    _send(config, reminder, {"action": "snooze", "minutes": minutes}, wait)


def _reminder_or_exit(config: NeedlecareConfig, reminder_id: str) -> Reminder:
    store = reader(config)
    try:
        reminder: Reminder | None = store.reminders.get(reminder_id)
    finally:
        store.close()
    if reminder is None:
        raise click.BadParameter(f"no reminder {reminder_id!r}", param_hint="REMINDER_ID")
    return reminder


def _send(
    config: NeedlecareConfig, reminder: Reminder, command: dict[str, Any], wait: float
) -> None:
    from needlecare.cli.send import send_command  # noqa: PLC0415

    def outcome(store: Any) -> str:
        now = store.reminders.get(reminder.id)
        status = now.status.value if now is not None else "gone"
        return f"{command['action']}: reminder {reminder.id} ({reminder.title}) is now {status}"

    body = {**command, "reminder_id": reminder.id, "event_id": f"cli-{uuid.uuid4().hex}"}
    code = send_command(
        config, reminder.profile, body, wait=wait, outcome=outcome, check_with="reminders"
    )
    sys.exit(code)


@click.command()
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include sent and cancelled deliveries.")
@json_option
def outbox(config_path: Path | None, show_all: bool, as_json: bool) -> None:
    """Show deliveries waiting to go out, and why they wait."""
    config = load_or_exit(config_path)
    items = reader(config).outbox.listing(None if show_all else "pending")
    if as_json:
        click.echo(output.to_json(output.record(i) for i in items))
        return
    rows = [
        (
            i.id,
            i.channel,
            output.printable(i.target, 40),
            i.status.value,
            local_time(config, i.profile, i.not_before)
            if i.profile
            else i.not_before.astimezone(display_zone(config)),
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


@click.command()
@config_option
@click.option("--profile", default=None, help="Only this profile's windows.")
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="File to write."
)
def calendar(config_path: Path | None, profile: str | None, out: Path | None) -> None:
    """Export next-session windows as an iCalendar (.ics) file.

    Each window is an all-day event, from the day it opens to the day it closes
    in the profile's time zone, worded in the profile's language.
    """
    from needlecare.app.windows import window_events  # noqa: PLC0415
    from needlecare.calendar_export import to_ics  # noqa: PLC0415
    from needlecare.clock import SystemClock  # noqa: PLC0415
    from needlecare.domain.protocol import build_protocols  # noqa: PLC0415

    config = load_or_exit(config_path)
    check_profile(config, profile)
    store = reader(config)
    protocols = build_protocols(config.protocol)

    def language_of(name: str) -> str:
        return config.profiles[name].language

    events = []
    for name, settings in config.profiles.items():
        if profile in (None, name):
            found = window_events(store.sessions(name), protocols, language_of)
            events += [replace(event, zone=ZoneInfo(settings.timezone)) for event in found]
    text = to_ics(events, now=SystemClock().now())
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8", newline="")
        click.echo(f"wrote {len(events)} window(s) to {out}", err=True)


@click.command()
@config_option
@json_object_option
def status(config_path: Path | None, as_json: bool) -> None:
    """Connection state, pending reminders, outbox backlog and the latest events.

    Says whether a daemon holds this store (and its pid) beside what the broker's
    retained status says; times in the first profile's zone (--json: UTC).
    """
    from needlecare.cli.status import collect_status, render_status  # noqa: PLC0415

    config = load_or_exit(config_path)
    report = collect_status(config, reader(config))
    text = json.dumps(report, indent=2) if as_json else render_status(report, display_zone(config))
    click.echo(text)


REMINDER_COMMANDS = (reminders, ack, snooze, outbox, calendar, status)
