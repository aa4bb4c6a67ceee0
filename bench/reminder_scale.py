"""Many pending reminders: start-up, memory, the next due one delivered on time.

For each size N: a store with N - 1 reminders over the next year and one due 3 s after
the daemon's spawn; the daemon's start-up, idle RSS and that reminder's lateness on the
mirror; in process, the store's open and next-due queries; and the design not chosen,
APScheduler 3 with one date job per reminder (up to --apscheduler-max, in a fresh
process). The import floor is interpreter start plus the imports of ``needlecare run``.
"""

import gc
import json
import multiprocessing
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.harness.daemon import ONE_PROFILE, running_daemon
from bench.harness.mqtt import Peer
from bench.harness.proc import rss_mib
from bench.harness.report import Bench, BenchError, percentiles, progress, table, wall_clock

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
APSCHEDULER_MAX = 100_000
KNOWN_ID = "bench-known"
DUE_AFTER_SPAWN = timedelta(seconds=3)
NOTIFY_TOPIC = "needlecare/mirror/hallway/notify"
YEAR = timedelta(days=365)
_FLOOR_CODE = (
    "import pathlib, time, needlecare.cli.main, needlecare.app.run;"
    " print('imported:', time.monotonic());"
    " print(pathlib.Path('/proc/self/status').read_text())"
)
_INSERT = (
    "INSERT INTO reminders (id, session_id, profile, kind, title, message, severity, channels,"
    " needs_ack, escalation, status, due_at, planned_at, created_at)"
    " VALUES (?, NULL, 'alice', 'window_open', 'Next session window open',"
    " 'You can plan your next session.', 'info', '[\"mirror\"]', 0, '[]', 'pending', ?, ?, ?)"
)


def summary(seconds: Sequence[float], scale: float) -> dict[str, float]:
    """Median and p99 of durations, multiplied by ``scale`` (1e3 for ms, 1e6 for µs)."""
    figures = percentiles(seconds, scale)
    return {"median": figures["p50"], "p99": figures["p99"]}


def timed(call: Callable[[], object], count: int = 200, scale: float = 1e6) -> dict[str, float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return summary(durations, scale)


def _rows(count: int, now: datetime) -> Iterator[tuple[str, str, str, str]]:
    """Pending reminders due from an hour from now to a year from now, in due order."""
    from needlecare_integrations.store.sqlite import to_db  # noqa: PLC0415

    created, first, step = to_db(now), now + timedelta(hours=1), YEAR / max(count, 1)
    for i in range(count):
        due = to_db(first + step * i)
        yield f"bench-{i:07d}", due, due, created


def seed(path: Path, count: int, now: datetime, rows: Iterator[Any] | None = None) -> float:
    """Create the schema with the store, then insert ``count`` reminders in one transaction."""
    from needlecare_integrations.store import SqliteStore  # noqa: PLC0415

    if not path.exists():
        SqliteStore.open(path, now=now).close()
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # seeding only; the daemon opens with FULL
        conn.execute("BEGIN")
        conn.executemany(_INSERT, _rows(count, now) if rows is None else rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def add_known(path: Path, due_at: datetime) -> None:
    """The one reminder the daemon must deliver during the run, due at ``due_at``."""
    from needlecare_integrations.store.sqlite import to_db  # noqa: PLC0415

    due = to_db(due_at)
    seed(path, 1, due_at, iter([(KNOWN_ID, due, due, to_db(wall_clock()))]))


def measure_store(path: Path) -> dict[str, Any]:
    """Open the N-row file, then time the queries the core loop uses to find what is due."""
    from needlecare_integrations.store import SqliteStore  # noqa: PLC0415

    opens = []  # the open alone, as the daemon's start pays it
    for _ in range(20):
        started = time.perf_counter()
        opened = SqliteStore.open(path, now=wall_clock())
        opens.append(time.perf_counter() - started)
        opened.close()
    store = SqliteStore.open(path, now=wall_clock())
    try:
        reminders = store.reminders
        next_due = reminders.next_due_at()
        if next_due is None:
            raise BenchError(f"no pending reminder in {path}")
        now, known = wall_clock(), reminders.get(KNOWN_ID)
        return {"open_ms": summary(opens, 1e3), "next_due_at_us": timed(reminders.next_due_at),
                "due_next_us": timed(lambda: reminders.due(next_due)),
                "due_now_us": timed(lambda: reminders.due(now)),
                "due_next_rows": len(reminders.due(next_due)),
                "due_now_rows": len(reminders.due(now)),
                "known_status": None if known is None else known.status.value}  # fmt: skip
    finally:
        store.close()


def measure_daemon(work: Path) -> dict[str, Any]:
    """Start-up, idle RSS and the known reminder's delivery, with a broker of its own."""
    arrived: list[datetime] = []
    done = threading.Event()

    def on_message(message: Any, _stamp: float) -> None:
        body = json.loads(message.payload)
        if isinstance(body, dict) and body.get("reminder_id") == KNOWN_ID and not arrived:
            arrived.append(wall_clock())
            done.set()

    sections = {"profiles": ONE_PROFILE, "mirrors": {"hallway": {}}}
    with (
        running_daemon(work, start=False, **sections) as daemon,
        Peer(daemon.broker, "bench-notify-watch", on_message=on_message) as peer,
    ):
        peer.subscribe(NOTIFY_TOPIC)
        due_at = wall_clock() + DUE_AFTER_SPAWN
        add_known(daemon.db, due_at)
        daemon.start()
        started_s = daemon.wait_for("daemon_started") - daemon.spawned_at
        connected_s = daemon.wait_for("mqtt_connected") - daemon.spawned_at
        time.sleep(1.0)
        rss, peak = rss_mib(daemon.pid), rss_mib(daemon.pid, "VmHWM")
        done.wait(max((due_at - wall_clock()).total_seconds() + 15, 1.0))
        exit_code = daemon.stop(15.0)
    late = None if not arrived else (arrived[0] - due_at).total_seconds() * 1e3
    return {"started_s": started_s, "connected_s": connected_s, "rss_mib": rss,
            "rss_peak_mib": peak, "notified": bool(arrived), "lateness_ms": late,
            "exit_code": exit_code}  # fmt: skip


def import_floor(runs: int = 3) -> dict[str, float]:
    """Interpreter start plus the imports of ``needlecare run``, up to the child's stamp."""
    found = []
    for _ in range(runs):
        spawned = time.monotonic()
        command = [sys.executable, "-c", _FLOOR_CODE]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        fields = dict(line.partition(":")[::2] for line in done.stdout.splitlines())
        found.append((float(fields["imported"]) - spawned, int(fields["VmRSS"].split()[0]) / 1024))
    return {"seconds": statistics.median(r[0] for r in found), "rss_mib": max(r[1] for r in found)}


def _noop() -> None:
    """The job body; never runs, every job is months away."""


def apscheduler_child(count: int) -> dict[str, Any]:
    """In a fresh process: add ``count`` date jobs to a running BackgroundScheduler."""
    from apscheduler.jobstores.memory import MemoryJobStore  # noqa: PLC0415
    from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415
    from apscheduler.triggers.date import DateTrigger  # noqa: PLC0415

    now = wall_clock()
    times = [now + timedelta(hours=1) + YEAR / count * i for i in range(count)]
    random.Random(count).shuffle(times)  # reminders are planned in no particular due order
    scheduler = BackgroundScheduler(jobstores={"default": MemoryJobStore()}, timezone=UTC)
    scheduler.start()
    try:
        gc.collect()
        before, started = rss_mib(os.getpid()), time.perf_counter()
        for i, when in enumerate(times):
            scheduler.add_job(_noop, DateTrigger(run_date=when), id=f"r{i}")
        elapsed, after = time.perf_counter() - started, rss_mib(os.getpid())
        jobs = len(scheduler.get_jobs())
    finally:
        scheduler.shutdown(wait=False)
    return {"jobs": jobs, "add_s": elapsed, "per_job_us": elapsed / count * 1e6,
            "rss_before_mib": before, "rss_growth_mib": after - before,
            "order": "shuffled"}  # fmt: skip


def measure_size(size: int, work: Path, *, apscheduler: bool) -> dict[str, Any]:
    db = work / "needlecare.db"
    work.mkdir(parents=True)
    progress(f"N={size:,}: seeding")
    seed_s = seed(db, size - 1, wall_clock())
    file_mib = db.stat().st_size / 2**20
    progress(f"N={size:,}: daemon")
    daemon = measure_daemon(work)
    progress(f"N={size:,}: store queries")
    store = measure_store(db)
    aps = None
    if apscheduler:
        progress(f"N={size:,}: APScheduler, {size:,} jobs")
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            aps = pool.apply(apscheduler_child, (size,))
    return {"size": size, "seed_s": seed_s, "file_mib": file_mib, "daemon": daemon,
            "store": store, "apscheduler": aps}  # fmt: skip


def run(args: Any, work: Path) -> dict[str, Any]:
    progress("import floor")
    floor = import_floor()
    results = [
        measure_size(size, work / f"n{size}", apscheduler=size <= args.apscheduler_max)
        for size in args.sizes
    ]
    return {"machine": {"apscheduler": metadata.version("APScheduler")}, "sizes": list(args.sizes),
            "apscheduler_max": args.apscheduler_max, "import_floor": floor,
            "results": results}  # fmt: skip


def render(report: dict[str, Any]) -> str:
    pair = lambda f, d=0: f"{f['median']:.{d}f} / {f['p99']:.{d}f}"  # noqa: E731
    daemon_rows, store_rows, aps_rows = [], [], []
    for r in report["results"]:
        d, s, a, late = r["daemon"], r["store"], r["apscheduler"], r["daemon"]["lateness_ms"]
        daemon_rows.append(
            [f"{r['size']:,}", f"{r['seed_s']:.1f}", f"{r['file_mib']:.1f}",
             f"{d['started_s']:.2f}", f"{d['connected_s']:.2f}", f"{d['rss_mib']:.1f}",
             "yes" if d["notified"] else "NO", "-" if late is None else f"{late:.1f}"]
        )  # fmt: skip
        timings = ("next_due_at_us", "due_next_us", "due_now_us")
        store_rows.append([f"{r['size']:,}", pair(s["open_ms"], 2), *(pair(s[t]) for t in timings)])
        if a is not None:
            aps_rows.append([f"{r['size']:,}", f"{a['add_s']:.2f}", f"{a['per_job_us']:.1f}",
                             f"{a['rss_growth_mib']:.1f}"])  # fmt: skip
    floor = report["import_floor"]
    daemon_headers = ("N", "seed s", "file MiB", "started s", "connected s", "idle RSS MiB")
    store_headers = ("N", "open ms", "next_due_at µs", "due(next) µs", "due(now) µs")
    return "\n".join([
        "Daemon with N pending reminders (times from spawn; lateness of the known reminder)",
        table((*daemon_headers, "notified", "late ms"), daemon_rows),
        "",
        "Store, in process (median / p99 over calls)",
        table(store_headers, store_rows),
        "",
        "APScheduler 3, one date job per reminder (MemoryJobStore, fresh process)",
        table(("N", "add s", "µs/job", "RSS +MiB"), aps_rows) if aps_rows else "(not run)",
        "",
        "Import floor (python -c 'import needlecare.cli.main, needlecare.app.run'):"
        f" {floor['seconds']:.2f} s, {floor['rss_mib']:.1f} MiB RSS",
    ])  # fmt: skip


OPTIONS = {
    "--sizes": (lambda t: [int(n) for n in t.split(",")], list(DEFAULT_SIZES), "e.g. 1000,5000"),
    "--apscheduler-max": (int, APSCHEDULER_MAX, "APScheduler for sizes up to this (0: never)"),
}
BENCH = Bench("reminder_scale", __doc__, run, render, options=OPTIONS,
              ok=lambda r: all(s["daemon"]["notified"] for s in r["results"]))  # fmt: skip
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
