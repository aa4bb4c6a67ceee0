"""Commands that change the session journal through the daemon: log-session, void-session."""

import json
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from pydantic import ValidationError

from needlecare.cli.common import check_profile, config_option, load_or_exit, reader, wait_option
from needlecare.config import NeedlecareConfig
from needlecare.domain.events import COMMANDS, describe_validation_error
from needlecare.domain.sessions import Session, SessionStatus, session_id_for


@click.command("log-session")
@config_option
@click.option("--profile", required=True, help="Whose session it was.")
@click.option(
    "--setting", type=click.Choice(["home", "professional"]), default="home", show_default=True
)
@click.option(
    "--at",
    "at_text",
    default=None,
    help="When it ended: RFC 3339, or 'YYYY-MM-DD HH:MM' in the profile's time zone"
    " (default: now).",
)
@click.option("--depth", type=float, default=None, help="Needle depth in mm (0.1 to 3.0).")
@click.option("--duration", "duration_min", type=int, default=None, help="Length in minutes.")
@wait_option
def log_session(
    config_path: Path | None,
    profile: str,
    setting: str,
    at_text: str | None,
    depth: float | None,
    duration_min: int | None,
    wait: float,
) -> None:
    """Record a session by hand (e.g. one at a dermatologist's).

    The session goes to the running daemon as a log_session command, the same way
    Home Assistant's button sends it, and the command waits until the daemon has
    recorded it. With no daemon running it sends nothing and exits 7.
    """
    config = load_or_exit(config_path)
    check_profile(config, profile)
    command: dict[str, Any] = {
        "action": "log_session",
        "setting": setting,
        "event_id": f"cli-{uuid.uuid4().hex}",
    }
    if at_text is not None:
        zone = ZoneInfo(config.profiles[profile].timezone)
        command["timestamp"] = _parse_at(at_text, zone).isoformat()
    if depth is not None:
        command["needle_depth_mm"] = depth
    if duration_min is not None:
        command["duration_s"] = duration_min * 60
    _validate(command)

    def outcome(store: Any) -> str:
        session = store.session(session_id_for(command["event_id"]))
        status = session.status.value if session is not None else "not found"
        made = session_id_for(command["event_id"])
        return f"recorded: log_session for {profile}: session {made} ({status})"

    _send(config, profile, command, wait, outcome, "sessions")


@click.command("void-session")
@config_option
@click.argument("session_id")
@click.option("--reason", default=None, help="Why it is void (kept in the journal).")
@wait_option
def void_session(
    config_path: Path | None, session_id: str, reason: str | None, wait: float
) -> None:
    """Void a session logged by mistake (wrong person, test press, duplicate).

    The session stays in the journal as voided, its pending reminders are
    cancelled and cleared everywhere, and the plan of the latest remaining session
    comes back. Goes through the running daemon and waits until it has recorded it;
    with no daemon running on the store nothing is sent and the exit code is 7.
    """
    config = load_or_exit(config_path)
    store = reader(config)
    try:
        session: Session | None = store.session(session_id)
    finally:
        store.close()
    if session is None:
        raise click.BadParameter(f"no session {session_id!r}", param_hint="SESSION_ID")
    if session.status is SessionStatus.VOIDED:
        click.echo(f"session {session_id} was already voided; nothing to do")
        return
    command: dict[str, Any] = {
        "action": "void_session",
        "session_id": session_id,
        "event_id": f"cli-{uuid.uuid4().hex}",
    }
    if reason is not None:
        command["reason"] = reason
    _validate(command)

    def outcome(store: Any) -> str:
        now = store.session(session_id)
        status = now.status.value if now is not None else "gone"
        cancelled = sum(
            1 for r in store.reminders.for_session(session_id) if r.status == "cancelled"
        )
        return (
            f"void-session: session {session_id} ({session.profile}) is now {status};"
            f" {cancelled} reminder(s) of it cancelled"
        )

    _send(config, session.profile, command, wait, outcome, "sessions")


def _validate(command: dict[str, Any]) -> None:
    try:
        COMMANDS.validate_json(json.dumps(command))
    except ValidationError as error:
        raise click.UsageError(describe_validation_error(error)) from error


def _send(
    config: NeedlecareConfig,
    profile: str,
    command: dict[str, Any],
    wait: float,
    outcome: Callable[[Any], str],
    check: str,
) -> None:
    from needlecare.cli.send import send_command  # noqa: PLC0415

    sys.exit(send_command(config, profile, command, wait=wait, outcome=outcome, check_with=check))


def _parse_at(text: str, zone: ZoneInfo) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise click.BadParameter(f"not a date and time: {text!r}", param_hint="--at") from error
    # A time without an offset is the profile's local time: what a person types.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


SESSION_COMMANDS = (log_session, void_session)
