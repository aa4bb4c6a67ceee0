"""The report's sections as HTML: sessions, reminders, skin checks, products.

Each section says in a sentence when it has nothing to show, instead of drawing
empty axes or printing a bare table header. Words are in the profile's language;
machine values (a reminder's kind, a session's setting and status) are shown as
they are stored, the way the CLI and the JSON show them.
"""

from needlecare.domain.sessions import SessionStatus
from needlecare.i18n import NP_, Translator
from needlecare.report.data import OUTCOMES, ProductView, SessionView
from needlecare.report.gather import Report
from needlecare.report.plots import (
    OUTCOME_LABELS,
    redness_svg,
    reminders_svg,
    session_label,
    timeline_svg,
)
from needlecare.report.text import NONE, esc, local, local_day, session_length, table


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def _figure(svg: str | None, caption: str) -> str:
    if svg is None:
        return ""
    return f"<figure>\n{svg}\n<figcaption>{esc(caption)}</figcaption>\n</figure>"


def _empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def _headers(tr: Translator, *names: str) -> list[str]:
    return [tr.pgettext("column", name) for name in names]


def sessions_section(report: Report) -> str:
    """The timeline and the table of sessions."""
    tr = report.tr
    title = tr.gettext("Sessions")
    if not report.sessions:
        return _section("sessions", title, _empty(tr.gettext("No sessions recorded yet.")))
    caption = tr.gettext(
        "Each row is a session at its end (local time). Orange: the actives pause "
        "(no retinoids or exfoliants). Green: the window for the next session."
    )
    rows = [_session_row(view, report) for view in report.sessions]
    headers = _headers(
        tr,
        NP_("column", "started"),
        NP_("column", "ended"),
        NP_("column", "setting"),
        NP_("column", "status"),
        NP_("column", "depth"),
        NP_("column", "duration"),
        NP_("column", "source"),
    )
    body = _figure(timeline_svg(report), caption) + "\n" + table(headers, rows)
    return _section("sessions", title, body)


def _session_row(view: SessionView, report: Report) -> list[str]:
    session, tr = view.session, report.tr
    status = esc(session.status.value.replace("_", " "))
    if session.status is not SessionStatus.COMPLETED:
        status = f'<span class="flag">{status}</span>'
    depth = (
        NONE
        if session.needle_depth_mm is None
        else esc(tr.gettext("{depth} mm", depth=tr.number(session.needle_depth_mm)))
    )
    return [
        local(session.started_at, report.zone, tr),
        local(session.ended_at, report.zone, tr),
        esc(session.setting),
        status,
        depth,
        session_length(session, tr),
        esc(session.device_id or session.source),
    ]


def reminders_section(report: Report) -> str:
    """Counts per kind and outcome, the chart, and the latest reminders."""
    tr = report.tr
    title = tr.gettext("Reminders")
    if not report.tallies:
        return _section("reminders", title, _empty(tr.gettext("No reminders yet.")))
    headers = [
        tr.pgettext("column", "kind"),
        *(tr.pgettext("column", OUTCOME_LABELS[name]) for name in OUTCOMES),
        tr.pgettext("column", "total"),
    ]
    rows = [
        [esc(t.kind), *(str(t.counts[name]) for name in OUTCOMES), str(t.total)]
        for t in report.tallies
    ]
    totals = [sum(t.counts[name] for t in report.tallies) for name in OUTCOMES]
    everything = esc(tr.gettext("all"))
    rows.append([f"<strong>{everything}</strong>", *map(str, totals), str(sum(totals))])
    numeric = frozenset(range(1, len(headers)))
    counts = table(headers, rows, row_classes=[""] * (len(rows) - 1) + ["total"], numeric=numeric)
    explained = tr.gettext(
        "On time: delivered within the late threshold (answered or not). "
        "Late: delivered after it. Missed: the daemon was down past the grace period. "
        "Pending: not due yet."
    )
    note = f'<p class="note">{esc(explained)}</p>'
    chart = _figure(reminders_svg(report), tr.gettext("Reminders per kind, by outcome."))
    latest = "<h3>" + esc(tr.gettext("Latest reminders")) + "</h3>"
    body = "\n".join([counts, note, chart, latest, _recent(report)])
    return _section("reminders", title, body)


def _recent(report: Report) -> str:
    tr = report.tr
    if not report.recent:
        return _empty(tr.gettext("None due yet."))
    rows = [
        [
            local(r.due_at, report.zone, tr),
            esc(r.kind),
            esc(r.title),
            f'<span class="status {esc(r.status.value)}">{esc(r.status.value)}</span>',
            local(r.delivered_at, report.zone, tr),
            local(r.acked_at, report.zone, tr),
        ]
        for r in report.recent
    ]
    headers = _headers(
        tr,
        NP_("column", "due"),
        NP_("column", "kind"),
        NP_("column", "title"),
        NP_("column", "status"),
        NP_("column", "delivered"),
        NP_("column", "acknowledged"),
    )
    return table(headers, rows)


def redness_section(report: Report) -> str:
    """Redness by recovery day, and the checks behind the plot."""
    tr = report.tr
    title = tr.gettext("Skin checks")
    before = report.checks_before_any_session
    skipped = (
        '<p class="note">'
        + esc(
            tr.ngettext(
                "{n} skin check taken before the first session is not shown.",
                "{n} skin checks taken before the first session are not shown.",
                before,
            )
        )
        + "</p>"
        if before
        else ""
    )
    if not report.redness:
        return _section("skin-checks", title, _empty(tr.gettext("No skin checks yet.")) + skipped)
    rows, classes = [], []
    for series in report.redness:
        for point in series.points:
            classes.append("warn" if series.advised(point) else "")
            rows.append(
                [
                    local(point.check.checked_at, report.zone, tr),
                    esc(session_label(series.session, report)),
                    str(point.day),
                    esc(point.check.redness),
                    esc(point.check.note) if point.check.note else NONE,
                ]
            )
    caption = tr.gettext(
        "Redness (0-100) by local day after each session. Dashed: the redness threshold; "
        "shaded: where the protocol advises (highlighted in the table)."
    )
    headers = _headers(
        tr,
        NP_("column", "checked"),
        NP_("column", "after session"),
        NP_("column", "recovery day"),
        NP_("column", "redness"),
        NP_("column", "note"),
    )
    checks = table(headers, rows, row_classes=classes, numeric=frozenset({2, 3}))
    body = "\n".join([_figure(redness_svg(report), caption), skipped, checks])
    return _section("skin-checks", title, body)


def products_section(report: Report) -> str:
    """Every product applied, with restriction warnings highlighted."""
    tr = report.tr
    title = tr.gettext("Products applied")
    if not report.products:
        return _section("products", title, _empty(tr.gettext("No products recorded yet.")))
    warnings = sum(1 for view in report.products if view.warning)
    if warnings:
        text = tr.ngettext(
            "{n} product with a restricted ingredient was applied during an actives pause.",
            "{n} products with a restricted ingredient were applied during an actives pause.",
            warnings,
        )
        summary = f'<p class="alert">{esc(text)}</p>'
    else:
        text = tr.gettext("No restricted ingredient was applied during an actives pause.")
        summary = f'<p class="ok">{esc(text)}</p>'
    rows = [_product_row(view, report) for view in report.products]
    classes = ["warn" if view.warning else "" for view in report.products]
    headers = _headers(
        tr,
        NP_("column", "applied"),
        NP_("column", "product"),
        NP_("column", "ingredients"),
        NP_("column", "restriction"),
    )
    body = summary + "\n" + table(headers, rows, row_classes=classes)
    return _section("products", title, body)


def _product_row(view: ProductView, report: Report) -> list[str]:
    record = view.record
    ingredients = ", ".join(record.ingredients)
    return [
        local(record.applied_at, report.zone, report.tr),
        esc(record.product),
        esc(ingredients) if ingredients else NONE,
        _restriction(view, report),
    ]


def _restriction(view: ProductView, report: Report) -> str:
    tr = report.tr
    if not view.classes:
        return NONE
    classes = esc(tr.join(tr.ingredient(name) for name in view.classes))
    if not view.warning or view.session is None or view.session.pause_end is None:
        text = tr.gettext("{ingredients}: outside the actives pause", ingredients=classes)
        return f'<span class="muted">{text}</span>'
    warning = tr.gettext("{ingredients} during the actives pause", ingredients=classes)
    after = tr.gettext(
        "after the session of {day} (pause until {until})",
        day=esc(local_day(view.session.end, report.zone)),
        until=local(view.session.pause_end, report.zone, tr),
    )
    return f'<strong class="warning">&#9888; {warning}</strong> {after}'
