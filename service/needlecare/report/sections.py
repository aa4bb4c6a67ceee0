"""The report's sections as HTML: sessions, reminders, skin checks, products.

Each section says in a sentence when it has nothing to show, instead of drawing
empty axes or printing a bare table header.
"""

from needlecare.domain.sessions import SessionStatus
from needlecare.report.data import OUTCOMES, ProductView, SessionView
from needlecare.report.gather import Report
from needlecare.report.plots import redness_svg, reminders_svg, session_label, timeline_svg
from needlecare.report.text import NONE, esc, local, local_day, session_length, table


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def _figure(svg: str | None, caption: str) -> str:
    if svg is None:
        return ""
    return f"<figure>\n{svg}\n<figcaption>{esc(caption)}</figcaption>\n</figure>"


def _empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def sessions_section(report: Report) -> str:
    """The timeline and the table of sessions."""
    if not report.sessions:
        return _section("sessions", "Sessions", _empty("No sessions recorded yet."))
    caption = (
        "Each row is a session at its end (local time). Orange: the actives pause "
        "(no retinoids or exfoliants). Green: the window for the next session."
    )
    rows = [_session_row(view, report) for view in report.sessions]
    headers = ("started", "ended", "setting", "status", "depth", "duration", "source")
    body = _figure(timeline_svg(report), caption) + "\n" + table(headers, rows)
    return _section("sessions", "Sessions", body)


def _session_row(view: SessionView, report: Report) -> list[str]:
    session = view.session
    status = esc(session.status.value.replace("_", " "))
    if session.status is not SessionStatus.COMPLETED:
        status = f'<span class="flag">{status}</span>'
    depth = NONE if session.needle_depth_mm is None else esc(f"{session.needle_depth_mm:g} mm")
    return [
        local(session.started_at, report.zone),
        local(session.ended_at, report.zone),
        esc(session.setting),
        status,
        depth,
        session_length(session),
        esc(session.device_id or session.source),
    ]


def reminders_section(report: Report) -> str:
    """Counts per kind and outcome, the chart, and the latest reminders."""
    if not report.tallies:
        return _section("reminders", "Reminders", _empty("No reminders yet."))
    headers = ("kind", *OUTCOMES, "total")
    rows = [
        [esc(t.kind), *(str(t.counts[name]) for name in OUTCOMES), str(t.total)]
        for t in report.tallies
    ]
    totals = [sum(t.counts[name] for t in report.tallies) for name in OUTCOMES]
    rows.append(["<strong>all</strong>", *map(str, totals), str(sum(totals))])
    numeric = frozenset(range(1, len(headers)))
    counts = table(headers, rows, row_classes=[""] * (len(rows) - 1) + ["total"], numeric=numeric)
    note = (
        '<p class="note">On time: delivered within the late threshold (answered or not). '
        "Late: delivered after it. Missed: the daemon was down past the grace period. "
        "Pending: not due yet.</p>"
    )
    chart = _figure(reminders_svg(report), "Reminders per kind, by outcome.")
    body = "\n".join([counts, note, chart, "<h3>Latest reminders</h3>", _recent(report)])
    return _section("reminders", "Reminders", body)


def _recent(report: Report) -> str:
    if not report.recent:
        return _empty("None due yet.")
    rows = [
        [
            local(r.due_at, report.zone),
            esc(r.kind),
            esc(r.title),
            f'<span class="status {esc(r.status.value)}">{esc(r.status.value)}</span>',
            local(r.delivered_at, report.zone),
            local(r.acked_at, report.zone),
        ]
        for r in report.recent
    ]
    return table(("due", "kind", "title", "status", "delivered", "acknowledged"), rows)


def redness_section(report: Report) -> str:
    """Redness by recovery day, and the checks behind the plot."""
    before = report.checks_before_any_session
    skipped = (
        f'<p class="note">{before} skin check(s) taken before the first session are not shown.</p>'
        if before
        else ""
    )
    if not report.redness:
        return _section("skin-checks", "Skin checks", _empty("No skin checks yet.") + skipped)
    rows, classes = [], []
    for series in report.redness:
        for point in series.points:
            classes.append("warn" if series.advised(point) else "")
            rows.append(
                [
                    local(point.check.checked_at, report.zone),
                    esc(session_label(series.session, report)),
                    str(point.day),
                    esc(point.check.redness),
                    esc(point.check.note) if point.check.note else NONE,
                ]
            )
    caption = (
        "Redness (0-100) by local day after each session. Dashed: the redness threshold; "
        "shaded: where the protocol advises (highlighted in the table)."
    )
    headers = ("checked", "after session", "recovery day", "redness", "note")
    checks = table(headers, rows, row_classes=classes, numeric=frozenset({2, 3}))
    body = "\n".join([_figure(redness_svg(report), caption), skipped, checks])
    return _section("skin-checks", "Skin checks", body)


def products_section(report: Report) -> str:
    """Every product applied, with restriction warnings highlighted."""
    if not report.products:
        return _section("products", "Products applied", _empty("No products recorded yet."))
    warnings = sum(1 for view in report.products if view.warning)
    summary = (
        f'<p class="alert">{warnings} product(s) with a restricted ingredient were applied '
        "during an actives pause.</p>"
        if warnings
        else '<p class="ok">No restricted ingredient was applied during an actives pause.</p>'
    )
    rows = [_product_row(view, report) for view in report.products]
    classes = ["warn" if view.warning else "" for view in report.products]
    headers = ("applied", "product", "ingredients", "restriction")
    body = summary + "\n" + table(headers, rows, row_classes=classes)
    return _section("products", "Products applied", body)


def _product_row(view: ProductView, report: Report) -> list[str]:
    record = view.record
    ingredients = ", ".join(record.ingredients)
    return [
        local(record.applied_at, report.zone),
        esc(record.product),
        esc(ingredients) if ingredients else NONE,
        _restriction(view, report),
    ]


def _restriction(view: ProductView, report: Report) -> str:
    classes = esc(", ".join(view.classes))
    if not view.classes:
        return NONE
    if not view.warning or view.session is None or view.session.pause_end is None:
        return f'<span class="muted">{classes}: outside the actives pause</span>'
    session = local_day(view.session.end, report.zone)
    until = local(view.session.pause_end, report.zone)
    return (
        f'<strong class="warning">&#9888; {classes} during the actives pause</strong> '
        f"after the session of {esc(session)} (pause until {until})"
    )
