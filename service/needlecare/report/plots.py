"""The report's plots: the session timeline, reminder outcomes, redness over recovery days.

Each returns an inline ``<svg>`` element, or None when there is nothing to draw, so
the page shows a sentence instead of empty axes. Dates are drawn in the profile's
time zone.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from needlecare.domain.sessions import SessionStatus
from needlecare.i18n import NP_, Translator
from needlecare.report.data import OUTCOMES, RednessSeries, SessionView
from needlecare.report.gather import Report
from needlecare.report.svg import inline_svg, new_figure, styled

HOME: Final = "#1f6fb4"
PROFESSIONAL: Final = "#7b3fa0"
PAUSE: Final = "#f2a07b"
WINDOW: Final = "#9fd39a"
ALERT: Final = "#c0392b"
MUTED: Final = "#6b7280"
OUTCOME_COLORS: Final = {
    "on time": "#2e8b57",
    "late": "#e6a23c",
    "missed": "#c0392b",
    "snoozed": "#4a90d9",
    "cancelled": "#9ca3af",
    "pending": "#e5e7eb",
}
# One colour per session line; no red, which marks the threshold.
SERIES_COLORS: Final = (
    "#1f6fb4", "#e67e22", "#2e8b57", "#7b3fa0", "#8c564b", "#d63384", "#17becf", "#6b7280",
)  # fmt: skip
# Legend names of the outcomes, as the report's reminder table heads them.
OUTCOME_LABELS: Final = {
    "on time": NP_("column", "on time"),
    "late": NP_("column", "late"),
    "missed": NP_("column", "missed"),
    "snoozed": NP_("column", "snoozed"),
    "cancelled": NP_("column", "cancelled"),
    "pending": NP_("column", "pending"),
}
_DARK_TEXT: Final = frozenset({"late", "cancelled", "pending"})
_NOTES: Final = {
    SessionStatus.ABORTED: NP_("plot", "aborted"),
    SessionStatus.END_INFERRED: NP_("plot", "end inferred"),
    SessionStatus.OPEN: NP_("plot", "open"),
}
_MARGIN: Final = timedelta(days=7)


def session_label(view: SessionView, report: Report) -> str:
    """A session as the plots name it: its local date, and the setting when professional."""
    day = f"{view.at.astimezone(report.zone):%Y-%m-%d}"
    if view.session.setting == "professional":
        return report.tr.gettext("{day} (professional)", day=day)
    return day


def timeline_svg(report: Report) -> str | None:
    """One row per session: the marker, its actives pause and its next-session window."""
    views = report.sessions
    if not views:
        return None
    with styled("timeline"):
        figure = new_figure(10, 1.7 + 0.45 * len(views))
        axes = figure.add_subplot()
        for row, view in enumerate(views):
            _draw_session(axes, row, view, report.tr)
        _timeline_axes(axes, views, report)
        legend = _timeline_legend(report.tr)
        figure.legend(handles=legend, loc="outside lower center", ncol=4, frameon=False)
        return inline_svg(figure, "timeline", report.tr.gettext("Session timeline"))


def _num(moment: datetime) -> float:
    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]


def _draw_session(axes: Axes, row: int, view: SessionView, tr: Translator) -> None:
    if view.pause_end is not None and view.window is not None:
        start, end = _num(view.end), _num(view.pause_end)
        opens, closes = (_num(edge) for edge in view.window)
        band = (row - 0.3, 0.6)
        axes.broken_barh([(start, end - start)], band, facecolors=PAUSE, zorder=2)
        axes.broken_barh([(opens, closes - opens)], band, facecolors=WINDOW, zorder=1)
    x = _num(view.at)
    axes.plot([x], [row], linestyle="none", zorder=3, **_marker(view))
    if view.session.status is SessionStatus.ABORTED:
        axes.plot([x], [row], linestyle="none", marker="x", color=ALERT, ms=11, mew=2, zorder=4)
    status = view.session.status
    note = tr.pgettext("plot", _NOTES[status]) if status in _NOTES else None
    if note is not None:
        # On a white ground, so the "now" line or a band never runs through the words.
        axes.annotate(
            note,
            (x, row),
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            color=ALERT if status is SessionStatus.ABORTED else MUTED,
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"},
            zorder=5,
        )


def _marker(view: SessionView) -> dict[str, Any]:
    professional = view.session.setting == "professional"
    color = PROFESSIONAL if professional else HOME
    hollow = view.session.status in (SessionStatus.END_INFERRED, SessionStatus.OPEN)
    return {
        "marker": "D" if professional else "o",
        "ms": 9,
        "color": color,
        "markerfacecolor": "white" if hollow else color,
        "mew": 2,
    }


def _timeline_axes(axes: Axes, views: Sequence[SessionView], report: Report) -> None:
    low = min(view.at for view in views) - _MARGIN
    high = max(view.window[1] if view.window else view.at for view in views) + _MARGIN
    if low <= report.now <= high + timedelta(days=30):
        high = max(high, report.now + _MARGIN)
        axes.axvline(_num(report.now), color=MUTED, linestyle=":", linewidth=1.2, zorder=0)
        axes.annotate(
            report.tr.gettext("now"),
            (_num(report.now), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -2),
            textcoords="offset points",
            va="top",
            fontsize=8,
            color=MUTED,
        )
    axes.xaxis_date(report.zone)
    axes.set_xlim(_num(low), _num(high))
    _date_ticks(axes, report.zone)
    axes.set_yticks(range(len(views)), [session_label(view, report) for view in views])
    axes.set_ylim(len(views) - 0.4, -0.8)
    axes.grid(axis="x", color="#e5e7eb", zorder=0)
    title = report.tr.gettext("Sessions and their recovery (dates in {zone})", zone=report.zone.key)
    axes.set_title(title, loc="left")


def _date_ticks(axes: Axes, zone: ZoneInfo) -> None:
    """Dates on the x axis, ticked and labelled in ``zone`` (matplotlib's helpers are untyped)."""
    locator = mdates.AutoDateLocator(  # type: ignore[no-untyped-call]
        tz=zone, minticks=4, maxticks=10
    )
    formatter = mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
        locator, tz=zone
    )
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(formatter)


def _timeline_legend(tr: Translator) -> list[Any]:
    def dot(label: str, **style: Any) -> Line2D:
        return Line2D([], [], linestyle="none", ms=8, mew=2, label=label, **style)

    return [
        dot(tr.gettext("home session"), marker="o", color=HOME),
        dot(tr.gettext("professional session"), marker="D", color=PROFESSIONAL),
        dot(tr.gettext("end inferred (hollow)"), marker="o", color=MUTED, markerfacecolor="white"),
        dot(tr.pgettext("plot", "aborted"), marker="x", color=ALERT),
        Patch(facecolor=PAUSE, label=tr.gettext("actives pause")),
        Patch(facecolor=WINDOW, label=tr.gettext("next-session window")),
    ]


def reminders_svg(report: Report) -> str | None:
    """A stacked bar per reminder kind, split by how the reminders went."""
    rows = report.tallies
    if not rows:
        return None
    with styled("reminders"):
        figure = new_figure(10, 1.5 + 0.34 * len(rows))
        axes = figure.add_subplot()
        positions = list(range(len(rows)))
        left = [0] * len(rows)
        for name in OUTCOMES:
            values = [tally.counts[name] for tally in rows]
            if not any(values):
                continue
            bars = axes.barh(
                positions,
                values,
                left=left,
                height=0.6,
                label=report.tr.pgettext("column", OUTCOME_LABELS[name]),
                color=OUTCOME_COLORS[name],
                edgecolor="white",
            )
            labels = [str(value) if value else "" for value in values]
            color = "#1f2937" if name in _DARK_TEXT else "white"
            axes.bar_label(bars, labels=labels, label_type="center", fontsize=8, color=color)
            left = [a + b for a, b in zip(left, values, strict=True)]
        axes.set_yticks(positions, [tally.kind for tally in rows])
        axes.invert_yaxis()
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel(report.tr.gettext("reminders"))
        axes.set_title(report.tr.gettext("Reminders by kind and outcome"), loc="left")
        figure.legend(loc="outside lower center", ncol=len(OUTCOMES), frameon=False)
        return inline_svg(figure, "reminders", report.tr.gettext("Reminder outcomes per kind"))


def redness_svg(report: Report) -> str | None:
    """Redness by recovery day, one line per session, with the threshold and advice zone."""
    if not report.redness:
        return None
    with styled("redness"):
        figure = new_figure(10, 4.2)
        axes = figure.add_subplot()
        for index, series in enumerate(report.redness):
            _redness_line(axes, series, SERIES_COLORS[index % len(SERIES_COLORS)], report)
        last_day = max(point.day for series in report.redness for point in series.points)
        right = max(last_day, *(series.after_day for series in report.redness)) + 0.5
        for threshold, after_day in sorted({(s.threshold, s.after_day) for s in report.redness}):
            axes.axhline(
                threshold,
                color=ALERT,
                linestyle=(0, (5, 4)),
                linewidth=1.2,
                label=report.tr.gettext("redness threshold ({threshold})", threshold=threshold),
            )
            advice = report.tr.gettext(
                "advice: from day {day} at {threshold} or more", day=after_day, threshold=threshold
            )
            axes.axvspan(
                after_day, right, ymin=threshold / 100, ymax=1, color=ALERT, alpha=0.08, lw=0,
                label=advice,
            )  # fmt: skip
        axes.set_xlim(-0.5, right)
        _redness_axes(axes, report.tr)
        title = report.tr.gettext("Redness over recovery days per session")
        return inline_svg(figure, "redness", title)


def _redness_line(axes: Axes, series: RednessSeries, color: str, report: Report) -> None:
    professional = series.session.session.setting == "professional"
    axes.plot(
        [point.day for point in series.points],
        [point.check.redness for point in series.points],
        marker="D" if professional else "o",
        color=color,
        label=session_label(series.session, report),
    )


def _redness_axes(axes: Axes, tr: Translator) -> None:
    axes.set_ylim(0, 100)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(tr.gettext("recovery day (local calendar days since the session)"))
    axes.set_ylabel(tr.gettext("redness (0-100)"))
    axes.grid(color="#e5e7eb")
    axes.set_title(tr.gettext("Skin-check redness over the recovery"), loc="left")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
