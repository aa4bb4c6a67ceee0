"""The whole report as one self-contained HTML document.

No external stylesheet, script, font or image: the CSS sits in a ``<style>``
element and the plots are inline SVG, so the file opens offline and can be mailed.
"""

from typing import Final

from needlecare.domain.profile_state import ProfileState
from needlecare.domain.protocol_defaults import NOT_MEDICAL_ADVICE
from needlecare.i18n import N_
from needlecare.report.gather import Report
from needlecare.report.sections import (
    products_section,
    redness_section,
    reminders_section,
    sessions_section,
)
from needlecare.report.text import esc, local, markdown_inline

CSS: Final = """
:root { color-scheme: light; --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb;
  --warn-bg: #fdecea; --warn: #b42318; --ok: #2e7d32; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 1.7rem; margin: 0 0 8px; }
h2 { font-size: 1.3rem; margin: 36px 0 12px; padding-bottom: 4px;
  border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 24px 0 8px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 12px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
.disclaimer { background: #fff8e1; border-left: 4px solid #f0b429; padding: 8px 12px; }
.empty, .note, .muted { color: var(--muted); }
.empty { font-style: italic; }
.note { font-size: 0.9rem; }
.alert { color: var(--warn); font-weight: 600; }
.ok { color: var(--ok); }
.status-line { font-size: 1.05rem; }
figure { margin: 12px 0 16px; }
figcaption { color: var(--muted); font-size: 0.85rem; }
svg.plot { display: block; width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; margin: 8px 0; }
.table-wrap { overflow-x: auto; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; overflow-wrap: break-word; }
th { background: #f3f4f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { border-top: 2px solid var(--ink); }
tr.warn td { background: var(--warn-bg); }
.warning, .flag { color: var(--warn); }
.status { padding: 1px 6px; border-radius: 8px; background: var(--line); font-size: 0.85rem; }
.status.acked, .status.sent { background: #dcfce7; }
.status.late, .status.snoozed { background: #fef3c7; }
.status.missed { background: #fee2e2; }
code { font-size: 0.9em; }
time { white-space: nowrap; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85rem; }
@media print { body { background: #fff; } main { padding: 0; } }
"""

_STATUS_TEXT: Final = {
    "recovering": N_("Recovering: inside the actives pause"),
    "resting": N_("Resting: waiting for the next-session window"),
    "due": N_("Due: the next-session window is open"),
    "overdue": N_("Overdue: the next-session window has closed"),
}


def render_html(report: Report) -> str:
    """The report of ``report`` as a complete HTML document, in the profile's language."""
    tr = report.tr
    parts = [
        _header(report),
        _status(report),
        sessions_section(report),
        reminders_section(report),
        redness_section(report),
        products_section(report),
        "<footer>"
        + tr.gettext(
            "Made by {command} from the local journal. All times are in the profile's time zone.",
            command="<code>needlecare report</code>",
        )
        + "</footer>",
    ]
    title = esc(tr.gettext("Needlecare report: {name}", name=report.display_name))
    return (
        f'<!DOCTYPE html>\n<html lang="{esc(report.language)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(part for part in parts if part)
        + "\n</main>\n</body>\n</html>\n"
    )


def _header(report: Report) -> str:
    tr = report.tr
    name = esc(report.display_name)
    profile = "" if report.display_name == report.profile else f" ({esc(report.profile)})"
    heading = tr.gettext("Needlecare report: {name}", name=name)
    labels = [
        esc(tr.gettext(label)) for label in (N_("Profile"), N_("Time zone"), N_("Generated at"))
    ]
    # Looked up here: Babel's extractor does not look inside f-strings.
    return (
        f"<header>\n<h1>{heading}</h1>\n"
        '<dl class="meta">\n'
        f"<dt>{labels[0]}</dt><dd>{name}{profile}</dd>\n"
        f"<dt>{labels[1]}</dt><dd>{esc(report.zone.key)}</dd>\n"
        f"<dt>{labels[2]}</dt><dd>{local(report.now, report.zone, tr)}</dd>\n"
        "</dl>\n"
        f'<p class="disclaimer">{markdown_inline(tr.gettext(NOT_MEDICAL_ADVICE))}</p>\n</header>'
    )


def _status(report: Report) -> str:
    tr = report.tr
    if report.empty:
        text = tr.gettext(
            "Nothing recorded for this profile yet: no sessions, reminders, skin checks or "
            "products."
        )
        return f'<section id="status">\n<p class="empty status-line">{esc(text)}</p>\n</section>'
    return f'<section id="status">\n{_state_lines(report.state, report)}\n</section>'


def _state_lines(state: ProfileState, report: Report) -> str:
    tr = report.tr
    if state.status == "no_history":
        none_yet = esc(tr.gettext("No treated session yet."))
        return f'<p class="status-line">{none_yet}</p>'
    zone = report.zone
    lines = [
        f"<strong>{esc(tr.gettext(_STATUS_TEXT[state.status]))}</strong>",
        tr.gettext(
            "last session ended {when} (recovery day {day})",
            when=local(state.last_session_at, zone, tr),
            day=esc(state.recovery_day),
        ),
    ]
    for restriction in state.restrictions:
        classes = esc(tr.join(tr.ingredient(name) for name in restriction.ingredients))
        lines.append(
            tr.gettext(
                "no {ingredients} until {when}",
                ingredients=classes,
                when=local(restriction.until, zone, tr),
            )
        )
    lines.append(
        tr.gettext(
            "next-session window {start} to {end}",
            start=local(state.next_window_start, zone, tr),
            end=local(state.next_window_end, zone, tr),
        )
    )
    if state.open_prompts:
        count = len(state.open_prompts)
        lines.append(
            tr.ngettext(
                "{n} prompt waiting for an answer", "{n} prompts waiting for an answer", count
            )
        )
    # Translators: separates the clauses of the report's status line.
    separator = tr.gettext("; ")
    # Translators: the status line's clauses, then its closing punctuation.
    return (
        '<p class="status-line">' + tr.gettext("{clauses}.", clauses=separator.join(lines)) + "</p>"
    )
