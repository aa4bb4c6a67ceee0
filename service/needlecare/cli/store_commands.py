"""``needlecare backup FILE`` and ``needlecare restore FILE``: copies of the store.

How they work and when to use them: docs/RELIABILITY.md (backup and restore).
"""

import sys
from pathlib import Path

import click

from needlecare.cli.common import config_option, load_or_exit

MIB = 2**20


@click.command("backup")
@config_option
@click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace TARGET if it exists.")
def backup_command(config_path: Path | None, target: Path, force: bool) -> None:
    """Copy the store to TARGET, consistently, while the daemon keeps running."""
    from needlecare_integrations.store.backup import BackupError, backup  # noqa: PLC0415

    config = load_or_exit(config_path)
    try:
        copied = backup(config.store.path, target, overwrite=force)
    except BackupError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(4)
    click.echo(
        f"backed up {config.store.path} to {copied.path}"
        f" (schema {copied.schema}, {copied.size / MIB:.1f} MiB, integrity ok)"
    )


@click.command("restore")
@config_option
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
def restore_command(config_path: Path | None, source: Path) -> None:
    """Replace the store with SOURCE (a backup); the daemon must be stopped.

    SOURCE must pass SQLite's integrity check and have a schema this release can
    read; the current store is kept next to it as <store>.before-restore-<time>.
    """
    from needlecare.clock import SystemClock  # noqa: PLC0415
    from needlecare_integrations.store.backup import BackupError, restore  # noqa: PLC0415
    from needlecare_integrations.store.lock import StoreLockedError  # noqa: PLC0415

    config = load_or_exit(config_path)
    store = config.store.path
    try:
        restored, aside = restore(source, store, now=SystemClock().now())
    except StoreLockedError as error:
        click.echo(f"error: {error}; stop it first, then restore", err=True)
        sys.exit(6)  # as a second `needlecare run` on a held store
    except BackupError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(4)
    click.echo(f"restored {source} into {store} (schema {restored.schema})")
    if aside is not None:
        click.echo(f"the previous store is kept at {aside}")
    click.echo("the daemon migrates it on its next start if it is older than this release")


STORE_COMMANDS = (backup_command, restore_command)
