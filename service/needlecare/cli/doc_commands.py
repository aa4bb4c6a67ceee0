"""Commands that print references: schema, config-reference, protocol."""

import json
from pathlib import Path

import click

from needlecare.cli.common import config_option, load_or_exit
from needlecare.domain.events import json_schemas


@click.command()
@config_option
def schema(config_path: Path | None) -> None:
    """Print the JSON Schema of every inbound payload (device, mirror, command).

    The schemas do not depend on the configuration; -c is accepted like
    everywhere else, and a config given is checked.
    """
    if config_path is not None:
        load_or_exit(config_path)
    click.echo(json.dumps(json_schemas(), indent=2))


@click.command("config-reference")
@config_option
def config_reference_command(config_path: Path | None) -> None:
    """Print every configuration key with its type, default and meaning (Markdown).

    The reference does not depend on the configuration; -c is accepted like
    everywhere else, and a config given is checked.
    """
    from needlecare.cli.config_doc import config_reference  # noqa: PLC0415

    if config_path is not None:
        load_or_exit(config_path)

    click.echo(config_reference(), nl=False)


@click.command()
@config_option
def protocol(config_path: Path | None) -> None:
    """Print the effective care protocol (defaults plus the config's changes) as Markdown."""
    from needlecare.cli.protocol_doc import protocol_markdown  # noqa: PLC0415
    from needlecare.domain.protocol import build_protocols  # noqa: PLC0415
    from needlecare.domain.protocol_defaults import NOT_MEDICAL_ADVICE  # noqa: PLC0415

    config = load_or_exit(config_path)
    built = build_protocols(config.protocol)
    click.echo(NOT_MEDICAL_ADVICE + "\n")
    click.echo(protocol_markdown(built["home"], title="Home sessions"))
    click.echo(protocol_markdown(built["professional"], title="Professional sessions"), nl=False)


DOC_COMMANDS = (schema, config_reference_command, protocol)
