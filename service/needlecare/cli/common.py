"""What every command shares: the -c option, --json, config loading, the store reader."""

import sys
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from needlecare.config import ConfigError, NeedlecareConfig, format_problems, load_config

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
    return click.option(
        "--json", "as_json", is_flag=True, help="Print a JSON array of objects (times in UTC)."
    )(func)


def json_object_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON object (times in UTC)."
    )(func)


def wait_option(func: F) -> F:
    return click.option(
        "--wait",
        type=float,
        default=10.0,
        show_default=True,
        help="Seconds to wait for the daemon to record the command.",
    )(func)


def load_or_exit(config_path: Path | None) -> NeedlecareConfig:
    """Load the config, or print every problem and exit 1 (no traceback)."""
    try:
        return load_config(config_path)
    except ConfigError as error:
        click.echo(format_problems(error), err=True)
        sys.exit(1)


def config_warnings(config: NeedlecareConfig) -> list[str]:
    """What a valid config probably lacks: a person, a device."""
    warnings = []
    if not config.profiles:
        warnings.append(
            "no profiles: nobody to plan reminders for (add one under profiles:, with its timezone)"
        )
    if not config.devices:
        warnings.append(
            "no devices: events from any device are accepted, but only those that name a"
            " profile can be recorded (add your device under devices:, with its owner)"
        )
    return warnings


def check_profile(config: NeedlecareConfig, profile: str | None) -> None:
    """Exit 2 (a usage error) naming ``profile`` when the config has no such profile."""
    if profile is None or profile in config.profiles:
        return
    known = ", ".join(sorted(config.profiles)) or "none configured"
    raise click.BadParameter(
        f"unknown profile {profile!r} (known: {known})", param_hint="--profile"
    )


def reader(config: NeedlecareConfig) -> Any:
    from needlecare_integrations.store import SqliteStore, StoreError  # noqa: PLC0415

    try:
        return SqliteStore.open_read_only(config.store.path)
    except StoreError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(4)


def display_zone(config: NeedlecareConfig) -> tzinfo:
    """Where times that belong to no one person are shown: the first profile's zone, else UTC."""
    first = next(iter(config.profiles.values()), None)
    return ZoneInfo(first.timezone) if first is not None else UTC


def local_time(config: NeedlecareConfig, profile: str, moment: datetime | None) -> datetime | None:
    if moment is None or profile not in config.profiles:
        return moment
    return moment.astimezone(ZoneInfo(config.profiles[profile].timezone))
