"""Two simulated years of a household on a fake clock: does the store stop growing?

The daemon's core (ingest, aftercare, the Home Assistant outbox, retention) in this
process over a real store, turn by turn as the core loop takes them, fed the household
that bench/README.md describes. Left out: MQTT (mirror items count as sent when
released) and Home Assistant's HTTP (a stand-in worker answers each call at once).
Targets: year 2 <= year 1 + 10 %, <= 20 MiB, every outbox item sent once.
"""

import itertools
import json
import logging
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness.daemon import file_sizes
from bench.harness.proc import write_bytes
from bench.harness.report import Bench, fmt, load_average, now, progress, quiet_logs, table, verdict

START = datetime(2027, 1, 4, tzinfo=UTC)  # a Monday
BEAT, HOLD, WEEK = timedelta(seconds=30), timedelta(seconds=120), timedelta(days=7)
HA_DOWN_FROM, HA_DOWN_FOR = timedelta(hours=19, minutes=10), timedelta(hours=1)
SESSION_EVERY_DAYS, BAD_PER_DAY = 28, 100
SIZE_TARGET, GROWTH_TARGET = 20 * 2**20, 0.10
TABLES = ("events", "sessions", "reminders", "outbox", "dead_letters", "skin_checks")


class StandInWorker:
    """Home Assistant's worker without HTTP: takes one call at a time, answered by the bench."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.failures = 0
        self.rand = random.Random(14).random

    def submit(self, item_id: int, _call: object) -> None:
        self.calls.append(item_id)


class Household:
    """The core over one store, fed by each day's messages in time order."""

    def __init__(self, path: Path) -> None:
        from needlecare.app.aftercare import Aftercare  # noqa: PLC0415 - bench imports
        from needlecare.app.dispatch import MQTT_CHANNELS  # noqa: PLC0415
        from needlecare.app.ha_outbox import HaOutbox  # noqa: PLC0415
        from needlecare.app.ingest import Ingest  # noqa: PLC0415
        from needlecare.app.retention import Retention  # noqa: PLC0415
        from needlecare.config import NeedlecareConfig  # noqa: PLC0415
        from needlecare.domain import reminders as rem  # noqa: PLC0415
        from needlecare.domain.protocol import build_protocols  # noqa: PLC0415
        from needlecare.domain.topics import Topics  # noqa: PLC0415
        from needlecare_integrations.backoff import backoff_delay  # noqa: PLC0415
        from needlecare_integrations.store import SqliteStore  # noqa: PLC0415

        people = {"alice": {"timezone": "Europe/Berlin"}, "bob": {"timezone": "Europe/Berlin"}}
        self.config = NeedlecareConfig.model_validate(
            {
                "profiles": people,
                "devices": {"pen1": {"owner": "alice"}, "pen2": {"owner": "bob"}},
                "mirrors": {"hallway": {}},
                "homeassistant": {"url": "http://homeassistant.invalid:8123", "token": "bench"},
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
        self.worker = StandInWorker()
        self.ha = HaOutbox(self.care, self.worker)
        self.mirror, self.backoff = MQTT_CHANNELS, backoff_delay
        self.sent: Counter[str] = Counter()
        self.queued_while_down: set[str] = set()
        self.held: list[Any] = []
        self.hold_until: datetime | None = None
        self.next_due: datetime | None = START
        self.midnight = self.care.next_midnight(START)
        self.seq = self.commits = self.retries = 0

    def message(self, topic: str, body: dict[str, Any] | None, at: datetime) -> Any:
        from needlecare.app.inbound import InboundMessage  # noqa: PLC0415

        self.seq += 1
        if body is None:
            return InboundMessage(topic, b"{not json " + str(self.seq).encode(), at)
        payload = {"event_id": f"y{self.seq}", "timestamp": at.isoformat(), **body}
        return InboundMessage(topic, json.dumps(payload).encode(), at)

    def ha_down(self, at: datetime) -> bool:
        return HA_DOWN_FROM <= (at - START) % WEEK < HA_DOWN_FROM + HA_DOWN_FOR

    def turn(self, batch: list[Any], at: datetime) -> None:
        """One core turn: record, expire, wake, release mirror items; purge; Home Assistant."""
        with self.store.transaction():
            if batch:
                self.ingest.record(batch, at)
            self.ingest.expire_sessions(at)
            self.care.wake(at)
            for item in self.care.release(at, self.mirror):
                assert item.id is not None
                self.sent[item.key] += 1
                self.store.outbox.mark_sent(item.id, at)
        self.commits += 1
        self.retention.note_dead_letters(self.ingest.take_dead_lettered())
        if self.retention.due(at):
            with self.store.transaction():
                self.retention.step(at)
            self.retention.give_back(at)
            self.commits += 1
        if at >= self.midnight:
            self.midnight = self.care.next_midnight(at)
        self.ha.pump(at)
        self.answer(at)
        wakes = [self.ingest.next_wake(), self.care.next_wake(at), self.retention.next_wake()]
        wakes += [self.ha.next_wake(), self.midnight]
        self.next_due = min((t for t in wakes if t is not None), default=None)

    def answer(self, at: datetime) -> None:
        """The stand-in worker's answers, each a turn of its own as the core takes them."""
        while self.worker.calls:
            item_id = self.worker.calls.pop(0)
            key = self.store._conn.execute("SELECT key FROM outbox WHERE id = ?", (item_id,))
            key = key.fetchone()[0]
            self.commits += 1
            if self.ha_down(at):
                self.retries += 1
                self.queued_while_down.add(key)
                failures, rand = self.worker.failures, self.worker.rand
                delay = self.backoff(failures, rand=rand, base=1.0, cap=60.0)
                self.worker.failures += 1
                self.ha.finished(item_id, "retry", "unreachable", delay, at)
            else:
                self.worker.failures = 0
                self.sent[key] += 1
                self.ha.finished(item_id, "sent", None, 0.0, at)

    def run_until(self, at: datetime) -> None:
        """Every turn the core would take before ``at``: wake-ups and the end of a hold."""
        while True:
            wake = min((t for t in (self.next_due, self.hold_until) if t is not None), default=None)
            if wake is None or wake > at:
                return
            batch, self.held, self.hold_until = self.held, [], None
            self.turn(batch, wake)

    def day(self, day: int) -> None:
        for at, kind, message in self._messages(day, START + timedelta(days=day)):
            self.run_until(at)
            if kind == "beat":
                self.held.append(message)
                self.hold_until = self.hold_until or at + HOLD
                continue
            batch, self.held, self.hold_until = [*self.held, message], [], None
            self.turn(batch, at)
        self.run_until(START + timedelta(days=day + 1))

    def _messages(self, day: int, midnight: datetime) -> list[tuple[datetime, str, Any]]:
        timed: list[tuple[datetime, str, Any]] = []

        def add(at: datetime, topic: str, body: dict[str, Any] | None, kind: str = "other") -> None:
            timed.append((at, kind, self.message(topic, body, at)))

        device_topic = "needlecare/device/{}/event".format
        for n in range(int(timedelta(days=1) / BEAT)):
            body = {"type": "heartbeat", "battery_pct": 80, "cartridge_uses": day % 30}
            for device in ("pen1", "pen2"):
                add(midnight + n * BEAT, device_topic(device), body, "beat")
        for n in range(BAD_PER_DAY):
            add(midnight + timedelta(seconds=n * 864 + 7), device_topic("pen1"), None)
        for offset, device in ((0, "pen1"), (14, "pen2")):
            if (day - offset) % SESSION_EVERY_DAYS == 0:
                for minutes, kind in ((0, "session_started"), (15, "session_ended")):
                    at = midnight + timedelta(hours=19, minutes=minutes, seconds=1)
                    add(at, device_topic(device), {"type": kind})
        for n, profile in enumerate(("alice", "bob")):
            mirror: list[dict[str, Any]] = [
                {"type": "presence", "profile": profile},
                {"type": "skin_check", "profile": profile, "redness": 10 + day % 50},
                {"type": "product_applied", "profile": profile, "product": "serum"},
            ]
            for k, event in enumerate(mirror):
                at = midnight + timedelta(hours=20, minutes=n * 10 + k, seconds=3)
                add(at, "needlecare/mirror/hallway/event", event)
        timed.sort(key=lambda entry: entry[0])
        return timed

    def size(self) -> dict[str, Any]:
        """The file after a checkpoint, by table and index; the files before it: the log's share."""
        sql, files = self.store._conn.execute, file_sizes(self.store.path)
        sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        objects = sql("SELECT name, count(*), sum(pgsize), sum(unused) FROM dbstat GROUP BY name")
        return {
            "bytes": self.store.path.stat().st_size,
            "free_pages": self.store.retention.free_pages(),
            "rows": {t: sql(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES},  # noqa: S608
            "objects": {n: {"pages": p, "bytes": b, "unused": u} for n, p, b, u in objects},
            "dead_letters_dropped": self.store.retention.dropped_dead_letters(),
            "files_before_checkpoint": files,
        }

    def left_waiting(self, at: datetime) -> int:
        """Reminders or outbox items an hour past their time and still not out."""
        from needlecare_integrations.store.timestamps import to_db  # noqa: PLC0415

        late = to_db(at - timedelta(hours=1))
        reminders = len(self.store.reminders.due(at - timedelta(hours=1)))
        items = self.store._conn.execute(
            "SELECT count(*) FROM outbox WHERE status = 'pending' AND not_before < ?", (late,)
        )
        return reminders + int(items.fetchone()[0])


def run(args: Any, work: Path) -> dict[str, Any]:
    quiet_logs(logging.ERROR)  # 100 dead letters a day, each a warning, and HA's retries
    days, measure_days = args.days, max(1, min(args.measure_days, args.days))
    home = Household(work / "needlecare.db")
    started, per_day, yearly = now(), [], []
    for day in range(days):
        if day == measure_days:
            home.store._conn.execute("PRAGMA synchronous = OFF")
        mark = write_bytes()
        home.day(day)
        if day < measure_days:
            per_day.append(write_bytes() - mark)
        if (day + 1) % 365 == 0 or day + 1 == days:
            yearly.append({"day": day + 1, **home.size()})
            progress(f"day {day + 1}: store {yearly[-1]['bytes'] / 2**20:.2f} MiB")
    end = START + timedelta(days=days)
    twice = [key for key, count in home.sent.items() if count > 1]
    waiting = home.left_waiting(end)
    after_down = sum(1 for key in home.queued_while_down if home.sent[key] == 1)
    seconds = now() - started
    home.store.close()
    last = yearly[-1]
    stable = len(yearly) < 2 or yearly[1]["bytes"] <= yearly[0]["bytes"] * (1 + GROWTH_TARGET)
    once = not twice and waiting == 0 and after_down == len(home.queued_while_down)
    small = sum(last["files_before_checkpoint"].values()) <= SIZE_TARGET
    targets = {"stable": {"met": stable, "target": "year 2 <= year 1 + 10 %"},
               "size": {"met": small, "target": "<= 20 MiB, the log included"},
               "once": {"met": once,
                        "target": "each item sent once, the queued after, none left"}}  # fmt: skip
    return {"days": days, "seconds": seconds, "commits": home.commits, "yearly": yearly,
            "measured_days": len(per_day), "write_bytes_per_day": sum(per_day) / len(per_day),
            "write_bytes_per_day_max": max(per_day), "reminders_sent": len(home.sent),
            "reminders_sent_twice": len(twice), "reminders_waiting_past_due": waiting,
            "ha_down_retries": home.retries, "ha_queued_while_down": len(home.queued_while_down),
            "ha_queued_delivered_after": after_down, "targets": targets,
            "load_average": load_average()}  # fmt: skip


def growth(report: dict[str, Any]) -> list[str]:
    """Bytes per table and index at each year's end: where the growth is."""
    years = [y["objects"] for y in report["yearly"]]
    kib = lambda objects, name: objects.get(name, {}).get("bytes", 0) / 1024  # noqa: E731
    names = sorted(years[-1], key=lambda name: -years[-1][name]["bytes"])
    rows = [[name, *(fmt(kib(y, name), 0) for y in years), fmt(years[-1][name]["unused"] / 1024, 0)]
            for name in names if kib(years[-1], name) >= 16]  # fmt: skip
    headers = ("table or index", *(f"day {y['day']} KiB" for y in report["yearly"]), "unused KiB")
    return ["", "Where the bytes are (dbstat):", table(headers, rows)]


def render(report: dict[str, Any]) -> str:
    rows = [
        [str(y["day"]), fmt(y["bytes"] / 2**20, 2), str(y["free_pages"]),
         *(str(y["rows"][t]) for t in TABLES[:5]), str(y["dead_letters_dropped"])]
        for y in report["yearly"]
    ]  # fmt: skip
    headers = ("day", "MiB", "free pages", "events", "sessions", "reminders", "outbox", "dead")
    lines = [
        f"{report['days']} simulated days in {report['seconds']:.0f} s,"
        f" {report['commits']:,} commits",
        table((*headers, "dropped"), rows),
        *growth(report),
        "",
        f"written: {report['write_bytes_per_day'] / 1024:.0f} KiB per simulated day"
        f" (max {report['write_bytes_per_day_max'] / 1024:.0f} KiB, over the first"
        f" {report['measured_days']} days, fsync as in the daemon)",
        f"outbox items sent {report['reminders_sent']}, twice {report['reminders_sent_twice']},"
        f" left waiting past due {report['reminders_waiting_past_due']}; Home Assistant down:"
        f" {report['ha_queued_while_down']} items queued ({report['ha_down_retries']} retries),"
        f" {report['ha_queued_delivered_after']} delivered once after",
    ]
    lines += [f"day {y['day']} before the checkpoint: " + ", ".join(
        f"{name} {size / 2**20:.2f} MiB" for name, size in y["files_before_checkpoint"].items()
    ) for y in report["yearly"]]  # fmt: skip
    sizes = [y["bytes"] for y in report["yearly"]]
    changes = [f"{b / a - 1:+.1%}" for a, b in itertools.pairwise(sizes)]
    lines += [f"each year against the one before: {', '.join(changes)}"] if changes else []
    lines += [
        f"{name}: {t['target']}: {verdict(t['met'])}" for name, t in report["targets"].items()
    ]
    return "\n".join(lines)


OPTIONS = {
    "--days": (int, 730, "simulated days"),
    "--measure-days": (int, 7, "days with fsync, whose bytes written are measured"),
}
BENCH = Bench("year", __doc__, run, render, options=OPTIONS,
              ok=lambda r: r["targets"]["once"]["met"])  # fmt: skip
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
