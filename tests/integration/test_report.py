"""``needlecare report``: the HTML report, made through the command against a real store."""

# Asserts are written `expected == actual` (STYLE.md), which SIM300 calls Yoda conditions.

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from needlecare.cli.report_command import make_report_command, report_command
from needlecare.domain.protocol import Channel, Severity
from needlecare.domain.records import ProductRecord, SkinCheckRecord
from needlecare.domain.reminders import Reminder, ReminderStatus
from needlecare.domain.sessions import Session, SessionStatus
from needlecare_integrations.store import SqliteStore
from support.clock import FakeClock

pytestmark = pytest.mark.integration

# Alice in Berlin: a home session in winter (CET), a professional one five weeks
# later, and one just after the switch to summer time (CEST) whose end was inferred.
NOW = datetime(2026, 4, 2, 10, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"


def _session(sid: str, start: datetime, minutes: int, **changes: Any) -> Session:
    end = start + timedelta(minutes=minutes)
    base = Session(
        id=sid,
        profile="alice",
        device_id="pen1",
        setting="home",
        status=SessionStatus.COMPLETED,
        started_at=start,
        ended_at=end,
        last_seen_at=end,
        needle_depth_mm=0.5,
        duration_s=minutes * 60,
    )
    return replace(base, **changes)


WINTER = _session(
    "ses_winter", datetime(2026, 1, 10, 19, 0, tzinfo=UTC), 10, status=SessionStatus.ABORTED
)
CLINIC = _session(
    "ses_clinic",
    datetime(2026, 2, 14, 9, 0, tzinfo=UTC),
    60,
    setting="professional",
    device_id=None,
    source="manual",
    needle_depth_mm=1.5,
)
SPRING = _session(
    "ses_spring",
    datetime(2026, 3, 30, 18, 0, tzinfo=UTC),
    20,
    status=SessionStatus.END_INFERRED,
    duration_s=None,
)
BOB = Session(
    id="ses_bob",
    profile="bob",
    device_id="pen2",
    setting="home",
    status=SessionStatus.COMPLETED,
    started_at=datetime(2026, 2, 1, 18, 0, tzinfo=UTC),
    ended_at=datetime(2026, 2, 1, 18, 30, tzinfo=UTC),
    last_seen_at=datetime(2026, 2, 1, 18, 30, tzinfo=UTC),
)


def _check(n: int, at: datetime, redness: int, note: str | None = None) -> SkinCheckRecord:
    return SkinCheckRecord(f"chk{n}", "alice", at, redness, note)


def _day(start: datetime, days: int, hour: int) -> datetime:
    return (start + timedelta(days=days)).replace(hour=hour, minute=0)


SKIN_CHECKS = (
    _check(0, datetime(2026, 1, 5, 8, 0, tzinfo=UTC), 5, "before any session"),
    _check(1, _day(WINTER.started_at or NOW, 0, 21), 70, "red and warm"),
    _check(2, _day(WINTER.started_at or NOW, 1, 8), 55),
    _check(3, _day(WINTER.started_at or NOW, 3, 8), 30),
    _check(4, _day(WINTER.started_at or NOW, 6, 8), 10),
    _check(5, _day(CLINIC.started_at or NOW, 0, 12), 85),
    _check(6, _day(CLINIC.started_at or NOW, 2, 8), 62),
    _check(7, _day(CLINIC.started_at or NOW, 4, 8), 65, "still pink"),
    _check(8, _day(CLINIC.started_at or NOW, 7, 8), 20),
    _check(9, _day(SPRING.started_at or NOW, 0, 20), 60),
    _check(10, _day(SPRING.started_at or NOW, 2, 7), 35, "<b>itchy</b> & warm"),
)
PRODUCTS = (
    # Inside the winter session's pause (it ended 2026-01-10 19:10 UTC, +72 h).
    ProductRecord("p1", "alice", datetime(2026, 1, 11, 8, 30, tzinfo=UTC), "Hydra serum",
                  ("hyaluronic acid", "glycerin")),
    ProductRecord("p2", "alice", datetime(2026, 1, 11, 20, 0, tzinfo=UTC), "Night serum",
                  ("retinol", "squalane")),
    # The same retinol after the pause: no warning.
    ProductRecord("p3", "alice", datetime(2026, 1, 20, 20, 0, tzinfo=UTC), "Night serum",
                  ("retinol", "squalane")),
    ProductRecord("p4", "alice", datetime(2026, 2, 20, 20, 0, tzinfo=UTC), HOSTILE, ("water",)),
)  # fmt: skip


def _reminder(
    kind: str,
    session: Session,
    status: ReminderStatus,
    *,
    after: timedelta = timedelta(0),
    late_by: timedelta | None = None,
    acked_after: timedelta | None = None,
) -> Reminder:
    """A reminder of ``session`` planned ``after`` its end, delivered ``late_by`` late."""
    planned = (session.ended_at or NOW) + after
    delivered = None if late_by is None else planned + late_by
    return Reminder(
        id=f"rem_{kind}_{session.id}",
        session_id=session.id,
        profile=session.profile,
        kind=kind,
        title=f"{kind.replace('_', ' ').capitalize()}",
        message="",
        severity=Severity.INFO,
        channels=(Channel.MIRROR,),
        needs_ack=kind == "soothe",
        escalation=(),
        status=status,
        due_at=planned,
        planned_at=planned,
        created_at=planned - timedelta(hours=1),
        delivered_at=delivered,
        acked_at=None if acked_after is None else planned + acked_after,
    )


ON_TIME = timedelta(seconds=5)
MIN, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
S = ReminderStatus
REMINDERS = (
    _reminder("soothe", WINTER, S.ACKED, late_by=ON_TIME, acked_after=9 * MIN),
    _reminder("serum_window", WINTER, S.SENT, after=30 * MIN, late_by=ON_TIME),
    _reminder("actives_resume", WINTER, S.LATE, after=72 * HOUR, late_by=HOUR),
    _reminder("window_open", WINTER, S.MISSED, after=28 * DAY),
    # Acknowledged, but first delivered half an hour late: counts as late.
    _reminder("soothe", CLINIC, S.ACKED, late_by=30 * MIN, acked_after=HOUR),
    _reminder("serum_window", CLINIC, S.SNOOZED, after=40 * MIN),
    _reminder("window_open", CLINIC, S.CANCELLED, after=28 * DAY),
    _reminder("overdue", CLINIC, S.SENT, after=42 * DAY, late_by=ON_TIME),
    _reminder("soothe", SPRING, S.ACKED, late_by=ON_TIME, acked_after=3 * MIN),
    _reminder("actives_resume", SPRING, S.PENDING, after=72 * HOUR),
    _reminder("soothe", BOB, S.MISSED),
)


def seed(path: Path) -> None:
    """Fill a store the way the daemon would have."""
    store = SqliteStore.open(path, now=NOW)
    try:
        for session in (WINTER, CLINIC, SPRING, BOB):
            store.save_session(session)
        for check in SKIN_CHECKS:
            store.add_skin_check(check)
        for product in PRODUCTS:
            store.add_product(product)
        for reminder in REMINDERS:
            store.reminders.save(reminder)
    finally:
        store.close()


def write_config(tmp_path: Path, store_path: Path) -> Path:
    path = tmp_path / "needlecare.yaml"
    path.write_text(
        f"store: {{path: {json.dumps(str(store_path))}}}\n"
        "profiles:\n"
        "  alice: {timezone: Europe/Berlin, display_name: Alice}\n"
        "  bob: {timezone: America/New_York}\n"
        "  carol: {timezone: Asia/Tokyo}\n",
        encoding="utf-8",
    )
    return path


def invoke(*args: str) -> Result:
    """``needlecare report`` in-process at NOW, with no NEEDLECARE_* variable of the outer
    environment, through a group as main.py registers it."""
    group = click.Group("needlecare", commands=[make_report_command(FakeClock(NOW))])
    outer = {name: None for name in os.environ if name.upper().startswith("NEEDLECARE_")}
    return CliRunner().invoke(group, ["report", *args], env=outer, catch_exceptions=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    store_path = tmp_path / "needlecare.db"
    seed(store_path)
    return write_config(tmp_path, store_path)


@pytest.fixture
def alice_page(config: Path, tmp_path: Path) -> str:
    out = tmp_path / "alice.html"
    result = invoke("-c", str(config), "--profile", "alice", "--out", str(out))
    assert 0 == result.exit_code, result.output
    return out.read_text(encoding="utf-8")


class _Tables(HTMLParser):
    """Every table of a page, by the id of the section it is in: rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[list[str]]]] = {}
        self._section = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._section = dict(attrs).get("id") or ""
        elif tag == "table":
            self.tables.setdefault(self._section, []).append([])
        elif tag == "tr":
            self.tables[self._section][-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._section][-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str, section: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables.get(section, [])


class TestReportContent:
    def test_writes_the_file_and_says_where(self, config: Path, tmp_path: Path) -> None:
        """Exit 0, the page at --out, and its path on stderr."""
        out = tmp_path / "sub" / "r.html"
        out.parent.mkdir()
        result = invoke("-c", str(config), "--profile", "alice", "--out", str(out))
        assert 0 == result.exit_code
        assert f"wrote {out}" == result.stderr.splitlines()[-1]
        assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    def test_page_is_self_contained(self, alice_page: str) -> None:
        """No address, script, stylesheet link or external image: it opens offline."""
        assert [] == re.findall(r"https?://", alice_page)
        assert "<script src" not in alice_page
        assert "<link" not in alice_page
        assert [] == re.findall(r"<img\b", alice_page)
        assert 1 == alice_page.count("<style>")

    def test_header_names_profile_zone_time_and_disclaimer(self, alice_page: str) -> None:
        """Display name, zone, generation time in local time, the bolded disclaimer."""
        assert "<h1>Needlecare report: Alice</h1>" in alice_page
        assert "<dt>Time zone</dt><dd>Europe/Berlin</dd>" in alice_page
        generated = '<dd><time datetime="2026-04-02T10:00:00Z">2026-04-02 12:00 CEST</time></dd>'
        assert f"<dt>Generated at</dt>{generated}" in alice_page
        assert "<strong>Not medical advice.</strong>" in alice_page
        assert "**" not in alice_page

    def test_sessions_table_in_local_time(self, alice_page: str) -> None:
        """Each of Alice's sessions with local times across DST; Bob's is not there."""
        [sessions] = tables(alice_page, "sessions")
        expected = [
            ["started", "ended", "setting", "status", "depth", "duration", "source"],
            ["2026-01-10 20:00 CET", "2026-01-10 20:10 CET", "home", "aborted", "0.5 mm",
             "10 min", "pen1"],
            ["2026-02-14 10:00 CET", "2026-02-14 11:00 CET", "professional", "completed",
             "1.5 mm", "1 h", "manual"],
            ["2026-03-30 20:00 CEST", "2026-03-30 20:20 CEST", "home", "end inferred", "0.5 mm",
             "20 min", "pen1"],
        ]  # fmt: skip
        assert expected == sessions

    def test_status_line_is_the_profile_state(self, alice_page: str) -> None:
        """Three days after the spring session: recovering, with the pause's end."""
        expected = (
            "Recovering: inside the actives pause; last session ended 2026-03-30 20:20 CEST"
            " (recovery day 3); no retinoids and exfoliants until 2026-04-02 20:20 CEST;"
            " next-session window 2026-04-27 20:20 CEST to 2026-05-11 20:20 CEST;"
            " 3 prompts waiting for an answer."
        )
        status = re.search(r'<section id="status">(.*?)</section>', alice_page, re.DOTALL)
        assert status is not None
        assert expected == unescape(re.sub(r"<[^>]+>", "", status[1])).strip()

    def test_reminder_counts_per_kind_and_outcome(self, alice_page: str) -> None:
        """Acked counts as on time unless its delivery was late; pending is not due yet."""
        counts, recent = tables(alice_page, "reminders")
        expected = [
            ["kind", "on time", "late", "missed", "snoozed", "cancelled", "pending", "total"],
            ["soothe", "2", "1", "0", "0", "0", "0", "3"],
            ["serum_window", "1", "0", "0", "1", "0", "0", "2"],
            ["actives_resume", "0", "1", "0", "0", "0", "1", "2"],
            ["window_open", "0", "0", "1", "0", "1", "0", "2"],
            ["overdue", "1", "0", "0", "0", "0", "0", "1"],
            ["all", "4", "2", "1", "1", "1", "1", "10"],
        ]
        assert expected == counts
        assert ["due", "kind", "title", "status", "delivered", "acknowledged"] == recent[0]
        assert ["2026-03-30 20:20 CEST", "soothe", "Soothe", "acked", "2026-03-30 20:20 CEST",
                "2026-03-30 20:23 CEST"] == recent[1]  # fmt: skip
        assert 9 == len(recent) - 1  # the pending one is not due yet

    def test_retinol_in_the_pause_is_a_warning_hyaluronic_acid_is_not(
        self, alice_page: str
    ) -> None:
        """Only the retinol applied inside the winter session's pause is flagged."""
        [products] = tables(alice_page, "products")
        expected = [
            ["applied", "product", "ingredients", "restriction"],
            ["2026-01-11 09:30 CET", "Hydra serum", "hyaluronic acid, glycerin", "\u2013"],
            ["2026-01-11 21:00 CET", "Night serum", "retinol, squalane",
             "\u26a0 retinoids during the actives pause after the session of 2026-01-10"
             " (pause until 2026-01-13 20:10 CET)"],
            ["2026-01-20 21:00 CET", "Night serum", "retinol, squalane",
             "retinoids: outside the actives pause"],
            ["2026-02-20 21:00 CET", HOSTILE, "water", "\u2013"],
        ]  # fmt: skip
        assert expected == products
        assert "1 product with a restricted ingredient was applied" in alice_page

    def test_user_text_is_escaped(self, alice_page: str) -> None:
        """A product named like a script and a note with markup arrive as text."""
        assert HOSTILE not in alice_page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in alice_page
        assert "&lt;b&gt;itchy&lt;/b&gt; &amp; warm" in alice_page

    def test_skin_checks_by_recovery_day(self, alice_page: str) -> None:
        """Checks sit on local recovery days after their session; earlier ones are counted."""
        [checks] = tables(alice_page, "skin-checks")
        days = [(row[1], row[2], row[3]) for row in checks[1:]]
        expected = [
            ("2026-01-10", "0", "70"), ("2026-01-10", "1", "55"), ("2026-01-10", "3", "30"),
            ("2026-01-10", "6", "10"), ("2026-02-14 (professional)", "0", "85"),
            ("2026-02-14 (professional)", "2", "62"), ("2026-02-14 (professional)", "4", "65"),
            ("2026-02-14 (professional)", "7", "20"), ("2026-03-30", "0", "60"),
            ("2026-03-30", "2", "35"),
        ]  # fmt: skip
        assert expected == days
        assert "1 skin check taken before the first session is not shown." in alice_page

    def test_only_redness_the_protocol_advises_on_is_highlighted(self, alice_page: str) -> None:
        """At or above 60 from recovery day 3: the clinic session's day 4, not the day-0 reds."""
        highlighted = re.findall(r'<tr class="warn"><td><time datetime="([^"]+)"', alice_page)
        expected = ["2026-02-18T08:00:00Z", "2026-01-11T20:00:00Z"]  # the check, the retinol
        assert expected == highlighted

    def test_three_plots_inline(self, alice_page: str) -> None:
        """Timeline, reminder chart and redness plot as inline SVG with distinct ids."""
        assert 3 == alice_page.count("<svg ")
        ids = re.findall(r'\bid="([^"]+)"', alice_page)
        assert len(ids) == len(set(ids))


class TestEmptyAndErrors:
    def test_same_journal_and_time_give_the_same_file(self, config: Path, tmp_path: Path) -> None:
        """No date, random id or salt in the output: two runs are byte-identical."""
        pages = []
        for name in ("one.html", "two.html"):
            invoke("-c", str(config), "--profile", "alice", "--out", str(tmp_path / name))
            pages.append((tmp_path / name).read_bytes())
        assert pages[0] == pages[1]

    def test_profile_without_data_gets_a_clean_report(self, config: Path, tmp_path: Path) -> None:
        """Carol has nothing: every section says so, and nothing is drawn."""
        out = tmp_path / "carol.html"
        result = invoke("-c", str(config), "--profile", "carol", "--out", str(out))
        page = out.read_text(encoding="utf-8")
        assert 0 == result.exit_code
        assert "Nothing recorded for this profile yet" in page
        for sentence in ("No sessions recorded yet.", "No reminders yet.", "No skin checks yet.",
                         "No products recorded yet."):  # fmt: skip
            assert sentence in page
        assert "<svg" not in page
        assert "<table" not in page
        assert "<dt>Time zone</dt><dd>Asia/Tokyo</dd>" in page

    def test_unknown_profile_is_a_usage_error(self, config: Path, tmp_path: Path) -> None:
        """A profile not in the config: exit 2, and no file written."""
        out = tmp_path / "dave.html"
        result = invoke("-c", str(config), "--profile", "dave", "--out", str(out))
        assert 2 == result.exit_code
        assert "unknown profile 'dave'" in result.stderr
        assert not out.exists()

    def test_missing_store_exits_4(self, tmp_path: Path) -> None:
        """No database at store.path: exit 4 like every reading command."""
        config = write_config(tmp_path, tmp_path / "nowhere.db")
        result = invoke("-c", str(config), "--profile", "alice", "--out", str(tmp_path / "r.html"))
        assert 4 == result.exit_code
        assert "nowhere.db" in result.stderr

    def test_command_object_is_named_report(self) -> None:
        """The object main.py registers is the ``report`` command."""
        assert "report" == report_command.name


def test_daemon_and_cli_do_not_import_matplotlib() -> None:
    """Only making a report imports matplotlib; the daemon and the CLI start without it."""
    code = (
        "import sys, needlecare.app.run, needlecare.cli.main, needlecare.cli.report_command;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'numpy')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[]\n" == done.stdout
