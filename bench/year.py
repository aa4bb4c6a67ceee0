"""Two simulated years of a household on a fake clock: does the store stop growing?

The daemon's core (ingest, aftercare, retention) runs in this process over a real
SQLite file with the daemon's settings (WAL, ``synchronous=FULL``), on a fake clock,
with the commit pattern of the running daemon: heartbeats held and committed
together every ``retention.heartbeat_hold_s`` (120 s), every other message in a
commit of its own, purge steps when due. Only MQTT is left out: outbox items are
"sent" (marked sent) as soon as they may go.

The household: 2 devices with a heartbeat every 30 s, a session every 4 weeks on
each, daily mirror events (presence, a skin check, a product) for both people, and
100 bad payloads a day. Home Assistant is not configured (its weekly hour down is
not simulated: the mirror is the only channel). Figures: the store's size at the
end of each year (target: year 2 <= year 1 + 10 %, <= 20 MB), bytes written per
simulated day (``/proc/self/io``), and that every reminder went out at most once
and none was left waiting past its time.

Bytes written are measured over the first ``--measure-days`` days, with fsync as in
the daemon. After those, the store runs with ``synchronous=OFF`` so that two years
take minutes instead of an hour of fsyncs: the rows, the purges and so the file's
size are the same; only the per-day write figure would be wrong, and it is not taken.
"""

import json
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import (
    bench_parser,
    finish,
    fmt,
    load_average,
    machine,
    progress,
    quiet_logs,
    source_state,
    table,
    verdict,
    workspace,
    write_bytes,
)

OUT = Path("bench/results/year.json")
START = datetime(2027, 1, 4, 0, 0, tzinfo=UTC)
BEAT = timedelta(seconds=30)
HOLD = timedelta(seconds=120)
SESSION_EVERY = timedelta(days=28)
BAD_PER_DAY = 100
SIZE_TARGET = 20 * 2**20
GROWTH_TARGET = 0.10
CHANNELS = ("mirror", "dashboard", "mobile", "voice")


class Household:
    """The core over one store, fed by the day's messages in time order."""

    def __init__(self, path: Path) -> None:
        from needlecare.app.aftercare import Aftercare  # noqa: PLC0415 - bench imports
        from needlecare.app.ingest import Ingest  # noqa: PLC0415
        from needlecare.app.retention import Retention  # noqa: PLC0415
        from needlecare.config import NeedlecareConfig  # noqa: PLC0415
        from needlecare.domain import reminders as rem  # noqa: PLC0415
        from needlecare.domain.protocol import build_protocols  # noqa: PLC0415
        from needlecare.domain.topics import Topics  # noqa: PLC0415
        from needlecare_integrations.store import SqliteStore  # noqa: PLC0415

        self.config = NeedlecareConfig.model_validate(
            {
                "profiles": {
                    "alice": {"timezone": "Europe/Berlin"},
                    "bob": {"timezone": "Europe/Berlin"},
                },
                "devices": {"pen1": {"owner": "alice"}, "pen2": {"owner": "bob"}},
                "mirrors": {"hallway": {}},
            }
        )
        self.store = SqliteStore.open(path, now=START)
        self.care = Aftercare(
            store=self.store,
            config=self.config,
            topics=Topics(),
            protocols=build_protocols(None),
            timing=rem.Timing(),
        )
        self.ingest = Ingest(
            store=self.store, config=self.config, topics=Topics(), aftercare=self.care
        )
        self.retention = Retention(self.store.retention, self.config.retention)
        self.sent: Counter[str] = Counter()
        self.seq = 0
        self.commits = 0

    def message(self, topic: str, body: dict[str, Any] | None, at: datetime) -> Any:
        from needlecare.app.inbound import InboundMessage  # noqa: PLC0415

        self.seq += 1
        if body is None:
            return InboundMessage(topic, b"{not json " + str(self.seq).encode(), at)
        payload = {"event_id": f"y{self.seq}", "timestamp": at.isoformat(), **body}
        return InboundMessage(topic, json.dumps(payload).encode(), at)

    def turn(self, batch: list[Any], now: datetime) -> None:
        """One core turn: record, expire, wake, release; then a purge step if due."""
        with self.store.transaction():
            if batch:
                self.ingest.record(batch, now)
            self.ingest.expire_sessions(now)
            self.care.wake(now)
            for item in self.care.release(now, CHANNELS):
                assert item.id is not None
                self.sent[item.key] += 1
                self.store.outbox.mark_sent(item.id, now)
        self.commits += 1
        self.retention.note_dead_letters(self.ingest.take_dead_lettered())
        if self.retention.due(now):
            with self.store.transaction():
                self.retention.step(now)
            self.retention.give_back(now)
            self.commits += 1

    def due(self, now: datetime) -> datetime | None:
        times = [self.ingest.next_wake(), self.care.next_wake(now), self.retention.next_wake()]
        times.append(self.store.outbox.next_not_before(CHANNELS))
        return min((t for t in times if t is not None), default=None)

    def day(self, day: int) -> None:
        """One simulated day's messages, in time order, with the daemon's commits."""
        midnight = START + timedelta(days=day)
        held: list[Any] = []
        hold_until: datetime | None = None
        for at, kind, message in self._messages(day, midnight):
            due = self.due(at)
            if hold_until is not None and (due is None or hold_until <= due) and hold_until <= at:
                self.turn(held, hold_until)
                held, hold_until = [], None
            while (due := self.due(at)) is not None and due <= at:
                self.turn(held, due)
                held, hold_until = [], None
            if kind == "beat":
                held.append(message)
                hold_until = hold_until or at + HOLD
                continue
            self.turn([*held, message], at)
            held, hold_until = [], None
        if held:
            self.turn(held, hold_until or midnight + timedelta(days=1))

    def _messages(self, day: int, midnight: datetime) -> list[tuple[datetime, str, Any]]:
        timed: list[tuple[datetime, str, Any]] = []
        for n in range(int(timedelta(days=1) / BEAT)):
            at = midnight + n * BEAT
            for device in ("pen1", "pen2"):
                body = {"type": "heartbeat", "battery_pct": 80, "cartridge_uses": day % 30}
                timed.append(
                    (at, "beat", self.message(f"needlecare/device/{device}/event", body, at))
                )
        for n in range(BAD_PER_DAY):
            at = midnight + timedelta(seconds=n * 864 + 7)
            timed.append((at, "other", self.message("needlecare/device/pen1/event", None, at)))
        for offset, device in ((0, "pen1"), (14, "pen2")):
            if (day - offset) % SESSION_EVERY.days == 0:
                at = midnight + timedelta(hours=19)
                topic = f"needlecare/device/{device}/event"
                for minutes, kind in ((0, "session_started"), (15, "session_ended")):
                    when = at + timedelta(minutes=minutes, seconds=1)
                    timed.append((when, "other", self.message(topic, {"type": kind}, when)))
        evening = midnight + timedelta(hours=20)
        for n, profile in enumerate(("alice", "bob")):
            for k, body in enumerate(
                (
                    {"type": "presence", "profile": profile},
                    {"type": "skin_check", "profile": profile, "redness": 10 + day % 50},
                    {"type": "product_applied", "profile": profile, "product": "serum"},
                )
            ):
                at = evening + timedelta(minutes=n * 10 + k, seconds=3)
                timed.append(
                    (at, "other", self.message("needlecare/mirror/hallway/event", body, at))
                )
        timed.sort(key=lambda entry: entry[0])
        return timed

    def size(self) -> dict[str, Any]:
        self.store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        counts = {
            table: self.store._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in (
                "events",
                "sessions",
                "reminders",
                "outbox",
                "dead_letters",
                "skin_checks",
            )
        }
        return {
            "bytes": self.store.path.stat().st_size,
            "free_pages": self.store.retention.free_pages(),
            "rows": counts,
            "dead_letters_dropped": self.store.retention.dropped_dead_letters(),
        }

    def late_waiting(self, now: datetime) -> int:
        return sum(1 for r in self.store.reminders.due(now - timedelta(hours=1)))


def run(days: int, workdir: Path | None, measure_days: int) -> dict[str, Any]:
    import logging  # noqa: PLC0415

    import structlog  # noqa: PLC0415

    quiet_logs()
    # 100 dead letters a day, each a warning: only errors here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    before = source_state()
    yearly: list[dict[str, Any]] = []
    with workspace(workdir, "needlecare-bench-year-") as work:
        home = Household(work / "needlecare.db")
        started = time.monotonic()
        per_day: list[int] = []
        for day in range(days):
            if day == measure_days:
                home.store._conn.execute("PRAGMA synchronous = OFF")
            mark = write_bytes()
            home.day(day)
            if day < measure_days:
                per_day.append(write_bytes() - mark)
            if (day + 1) % 365 == 0 or day + 1 == days:
                figures = home.size()
                figures["day"] = day + 1
                yearly.append(figures)
                progress(f"day {day + 1}: store {figures['bytes'] / 2**20:.2f} MiB")
        end = START + timedelta(days=days)
        twice = [key for key, count in home.sent.items() if count > 1]
        waiting = home.late_waiting(end)
        seconds = time.monotonic() - started
        home.store.close()
        found = machine(work, source_before=before)
    first, last = yearly[0], yearly[-1]
    stable = len(yearly) < 2 or last["bytes"] <= first["bytes"] * (1 + GROWTH_TARGET)
    return {
        "bench": "year",
        "machine": found,
        "days": days,
        "seconds": seconds,
        "commits": home.commits,
        "yearly": yearly,
        "measured_days": len(per_day),
        "write_bytes_per_day": sum(per_day) / len(per_day),
        "write_bytes_per_day_max": max(per_day),
        "reminders_sent": len(home.sent),
        "reminders_sent_twice": len(twice),
        "reminders_waiting_past_due": waiting,
        "targets": {
            "stable": {"met": stable, "target": "year 2 <= year 1 + 10 %"},
            "size": {"met": last["bytes"] <= SIZE_TARGET, "target": "<= 20 MiB"},
            "once": {"met": not twice and waiting == 0, "target": "each reminder once, none left"},
        },
        "load_average": load_average(),
    }


def render(report: dict[str, Any]) -> str:
    rows = [
        [
            str(y["day"]),
            fmt(y["bytes"] / 2**20, 2),
            str(y["free_pages"]),
            str(y["rows"]["events"]),
            str(y["rows"]["sessions"]),
            str(y["rows"]["reminders"]),
            str(y["rows"]["outbox"]),
            str(y["rows"]["dead_letters"]),
            str(y["dead_letters_dropped"]),
        ]
        for y in report["yearly"]
    ]
    headers = (
        "day",
        "MiB",
        "free pages",
        "events",
        "sessions",
        "reminders",
        "outbox",
        "dead",
        "dropped",
    )
    lines = [
        f"{report['days']} simulated days in {report['seconds']:.0f} s,"
        f" {report['commits']:,} commits",
        table(headers, rows),
        "",
        f"written: {report['write_bytes_per_day'] / 1024:.0f} KiB per simulated day"
        f" (max {report['write_bytes_per_day_max'] / 1024:.0f} KiB, over the first"
        f" {report['measured_days']} days, fsync as in the daemon)",
        f"reminders sent {report['reminders_sent']}, twice {report['reminders_sent_twice']},"
        f" left waiting past due {report['reminders_waiting_past_due']}",
    ]
    for name, t in report["targets"].items():
        lines.append(f"{name}: {t['target']}: {verdict(t['met'])}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("bench.year", __doc__, out=OUT, workdir_help="keep the store here")
    parser.add_argument("--days", type=int, default=730, help="simulated days")
    parser.add_argument("--measure-days", type=int, default=7, help="days with fsync, measured")
    args = parser.parse_args(argv)
    report = run(args.days, args.workdir, max(1, min(args.measure_days, args.days)))
    finish(report, args.out, render)
    return 0 if report["targets"]["once"]["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
