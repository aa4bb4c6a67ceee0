"""Many pending reminders: start-up, memory, the next due one delivered on time.

For each size N: a store with N - 1 reminders over the next year and one due 3 s after
the daemon's spawn; the daemon's start-up, idle RSS and that reminder's lateness on the
mirror; in process, the store's open and next-due queries; and the design not chosen,
APScheduler 3 with one date job per reminder (up to --apscheduler-max, in a fresh
process). The import floor is interpreter start plus the imports of ``needlecare run``.
"""

import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.harness.daemon import ONE_PROFILE, YEAR, running_daemon, seed_reminders
from bench.harness.mqtt import Peer
from bench.harness.proc import Child, rss_mib
from bench.harness.report import (
    Bench,
    BenchError,
    Stamps,
    columns,
    fmt,
    percentiles,
    progress,
    wall_clock,
)

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
APSCHEDULER_MAX = 100_000
KNOWN_ID = "bench-known"
DUE_AFTER_SPAWN = timedelta(seconds=3)
NOTIFY_TOPIC = "needlecare/mirror/hallway/notify"
_FLOOR_CODE = (
    "import pathlib, time, needlecare.cli.main, needlecare.app.run;"
    " print('imported:', time.monotonic());"
    " print(pathlib.Path('/proc/self/status').read_text())"
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


def add_known(path: Path, due_at: datetime) -> None:
    """The one reminder the daemon must deliver during the run, due at ``due_at``."""
    from needlecare_integrations.store.timestamps import to_db  # noqa: PLC0415

    due = to_db(due_at)
    seed_reminders(path, 1, due_at, iter([(KNOWN_ID, due, due, to_db(wall_clock()))]))


def measure_store(path: Path) -> dict[str, Any]:
    """Open the N-row file, then time the queries the core loop uses to find what is due."""
    from needlecare_integrations.store import SqliteStore  # noqa: PLC0415

    opens = []  # the open alone, as the daemon's start pays it
    for _ in range(20):
        started = time.perf_counter()
        opened = SqliteStore.open(path, now=wall_clock())
        opens.append(time.perf_counter() - started)
        opened.close()
    r: dict[str, Any] = {"open_ms": summary(opens, 1e3)}
    store = SqliteStore.open(path, now=wall_clock())
    try:
        reminders = store.reminders
        next_due = reminders.next_due_at()
        if next_due is None:
            raise BenchError(f"no pending reminder in {path}")
        now, known = wall_clock(), reminders.get(KNOWN_ID)
        r["next_due_at_us"] = timed(reminders.next_due_at)
        r["due_next_us"] = timed(lambda: reminders.due(next_due))
        r["due_now_us"] = timed(lambda: reminders.due(now))
        r["due_next_rows"], r["due_now_rows"] = (
            len(reminders.due(next_due)),
            len(reminders.due(now)),
        )
        r["known_status"] = None if known is None else known.status.value
        return r
    finally:
        store.close()


def measure_daemon(work: Path) -> dict[str, Any]:
    """Start-up, idle RSS and the known reminder's delivery, with a broker of its own."""
    arrived = Stamps()

    def on_message(message: Any, _stamp: float) -> None:
        body = json.loads(message.payload)
        if isinstance(body, dict) and body.get("reminder_id") == KNOWN_ID:
            arrived.add(KNOWN_ID, wall_clock().timestamp())

    sections = {"profiles": ONE_PROFILE, "mirrors": {"hallway": {}}}
    with (
        running_daemon(work, start=False, **sections) as daemon,
        Peer(daemon.broker, "bench-notify-watch", on_message=on_message) as peer,
    ):
        peer.subscribe(NOTIFY_TOPIC)
        due_at = wall_clock() + DUE_AFTER_SPAWN
        add_known(daemon.db, due_at)
        daemon.start()
        r: dict[str, Any] = {"started_s": daemon.wait_for("daemon_started") - daemon.spawned_at}
        r["connected_s"] = daemon.wait_for("mqtt_connected") - daemon.spawned_at
        time.sleep(1.0)
        r["rss_mib"], r["rss_peak_mib"] = rss_mib(daemon.pid), rss_mib(daemon.pid, "VmHWM")
        wait_s = max((due_at - wall_clock()).total_seconds() + 15, 1.0)
        at = arrived.first([KNOWN_ID], wait_s)
        r["exit_code"] = daemon.stop(15.0)
    r["notified"] = at is not None
    r["lateness_ms"] = None if at is None else (at[0] - due_at.timestamp()) * 1e3
    return r


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


def apscheduler_child(count: int, *, ready: Callable[[], None]) -> dict[str, Any]:
    """In a fresh process: add ``count`` date jobs to a running BackgroundScheduler."""
    from apscheduler.jobstores.memory import MemoryJobStore  # noqa: PLC0415
    from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415
    from apscheduler.triggers.date import DateTrigger  # noqa: PLC0415

    now = wall_clock()
    times = [now + timedelta(hours=1) + YEAR / count * i for i in range(count)]
    random.Random(count).shuffle(times)  # reminders are planned in no particular due order
    scheduler = BackgroundScheduler(jobstores={"default": MemoryJobStore()}, timezone=UTC)
    scheduler.start()
    ready()
    try:
        gc.collect()
        before, started = rss_mib(os.getpid()), time.perf_counter()
        for i, when in enumerate(times):
            scheduler.add_job(_noop, DateTrigger(run_date=when), id=f"r{i}")
        elapsed, after = time.perf_counter() - started, rss_mib(os.getpid())
        jobs = len(scheduler.get_jobs())
    finally:
        scheduler.shutdown(wait=False)
    return {
        "jobs": jobs,
        "add_s": elapsed,
        "per_job_us": elapsed / count * 1e6,
        "rss_before_mib": before,
        "rss_growth_mib": after - before,
        "order": "shuffled",
    }


def measure_size(size: int, work: Path, *, apscheduler: bool) -> dict[str, Any]:
    db, r = work / "needlecare.db", dict[str, Any](size=size, apscheduler=None)
    work.mkdir(parents=True)
    progress(f"N={size:,}: seeding")
    r["seed_s"] = seed_reminders(db, size - 1, wall_clock())
    r["file_mib"] = db.stat().st_size / 2**20
    progress(f"N={size:,}: daemon")
    r["daemon"] = measure_daemon(work)
    progress(f"N={size:,}: store queries")
    r["store"] = measure_store(db)
    if apscheduler:
        progress(f"N={size:,}: APScheduler, {size:,} jobs")
        r["apscheduler"] = Child(apscheduler_child, size).start().result()
    return r


def run(args: Any, work: Path) -> dict[str, Any]:
    progress("import floor")
    r = {"machine": {"apscheduler": metadata.version("APScheduler")}, "sizes": list(args.sizes)}
    r |= {"apscheduler_max": args.apscheduler_max, "import_floor": import_floor()}
    r["results"] = [
        measure_size(size, work / f"n{size}", apscheduler=size <= args.apscheduler_max)
        for size in args.sizes
    ]
    return r


def pair(figures: dict[str, float], digits: int = 0) -> str:
    return f"{figures['median']:.{digits}f} / {figures['p99']:.{digits}f}"


DAEMON = {
    "N": lambda r: f"{r['size']:,}",
    "seed s": lambda r: f"{r['seed_s']:.1f}",
    "file MiB": lambda r: f"{r['file_mib']:.1f}",
    "started s": lambda r: f"{r['daemon']['started_s']:.2f}",
    "connected s": lambda r: f"{r['daemon']['connected_s']:.2f}",
    "idle RSS MiB": lambda r: f"{r['daemon']['rss_mib']:.1f}",
    "notified": lambda r: "yes" if r["daemon"]["notified"] else "NO",
    "late ms": lambda r: fmt(r["daemon"]["lateness_ms"]),
}
STORE = {
    "N": lambda r: f"{r['size']:,}",
    "open ms": lambda r: pair(r["store"]["open_ms"], 2),
    "next_due_at µs": lambda r: pair(r["store"]["next_due_at_us"]),
    "due(next) µs": lambda r: pair(r["store"]["due_next_us"]),
    "due(now) µs": lambda r: pair(r["store"]["due_now_us"]),
}
APSCHEDULER = {
    "N": lambda r: f"{r['size']:,}",
    "add s": lambda r: f"{r['apscheduler']['add_s']:.2f}",
    "µs/job": lambda r: f"{r['apscheduler']['per_job_us']:.1f}",
    "RSS +MiB": lambda r: f"{r['apscheduler']['rss_growth_mib']:.1f}",
}
TEXT = """\
Daemon with N pending reminders (times from spawn; lateness of the known reminder)
{daemon}

Store, in process (median / p99 over calls)
{store}

APScheduler 3, one date job per reminder (MemoryJobStore, fresh process)
{apscheduler}

Import floor (python -c 'import needlecare.cli.main, needlecare.app.run'): \
{import_floor[seconds]:.2f} s, {import_floor[rss_mib]:.1f} MiB RSS"""


def render(report: dict[str, Any]) -> str:
    results, compared = report["results"], [r for r in report["results"] if r["apscheduler"]]
    tables = {"daemon": columns(DAEMON, results), "store": columns(STORE, results)}
    tables["apscheduler"] = columns(APSCHEDULER, compared) if compared else "(not run)"
    return TEXT.format_map(report | tables)


OPTIONS = {
    "--sizes": (lambda t: [int(n) for n in t.split(",")], list(DEFAULT_SIZES), "e.g. 1000,5000"),
    "--apscheduler-max": (int, APSCHEDULER_MAX, "APScheduler for sizes up to this (0: never)"),
}
BENCH = Bench(
    "reminder_scale",
    __doc__,
    run,
    render,
    lambda r: all(s["daemon"]["notified"] for s in r["results"]),
    OPTIONS,
)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
