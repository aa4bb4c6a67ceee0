"""``needlecare report``: one profile's history as a self-contained HTML file."""

from pathlib import Path

import click

from needlecare.cli.common import check_profile, config_option, load_or_exit, reader
from needlecare.clock import Clock, SystemClock


def make_report_command(clock: Clock) -> click.Command:
    """The ``report`` command, taking "generated at" from ``clock``."""

    @click.command("report")
    @config_option
    @click.option("--profile", required=True, help="Whose report to make.")
    @click.option(
        "--out",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("report.html"),
        show_default=True,
        help="HTML file to write.",
    )
    def report(config_path: Path | None, profile: str, out: Path) -> None:
        """Write one profile's sessions, reminders, skin checks and products as HTML.

        The page holds everything it needs (styles, plots), so it opens offline.
        """
        # Lazy: the report pulls in matplotlib, which no other command needs.
        try:
            from needlecare.report import gather, render_html  # noqa: PLC0415
        except ModuleNotFoundError as error:
            msg = f"the report needs the 'report' extra: pip install 'needlecare[report]' ({error})"
            raise click.ClickException(msg) from error

        config = load_or_exit(config_path)
        check_profile(config, profile)
        store = reader(config)
        try:
            page = render_html(gather(store, config, profile, clock.now()))
        finally:
            store.close()
        out.write_text(page, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)

    return report


report_command = make_report_command(SystemClock())
