"""How the daemon copes with many pending reminders: start-up, memory, the next due one.

For each size N the bench seeds a store with N pending reminders (N - 1 spread over
the next year, one known reminder due 3 s after the daemon is spawned), starts a
real Mosquitto and ``needlecare run`` as a process, and measures the time to the
``daemon_started`` and ``mqtt_connected`` log lines, the idle RSS, and how late the
known reminder reaches ``needlecare/mirror/hallway/notify``. Then, in this process,
it times ``SqliteStore.open`` and the queries that find the next due reminder.
Beside it, up to --apscheduler-max, the design we did not choose: APScheduler 3 with
one date job per reminder, measured in a fresh process so its RSS is clean.

    python -m bench.reminder_scale [--sizes 10000,100000,1000000] [--out PATH]
"""

import argparse
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
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from bench._common import (
    KIB_PER_MIB,
    BenchError,
    Daemon,
    Peer,
    bench_parser,
    daemon_config,
    finish,
    machine,
    percentiles,
    progress,
    quiet_logs,
    rss_mib,
    running_broker,
    source_state,
    table,
    wall_clock,
    workspace,
)
from needlecare.domain.protocol import Channel, Severity
from needlecare.domain.reminders import Reminder, ReminderStatus
from needlecare_integrations.store import SqliteStore
from needlecare_integrations.store.sqlite import to_db

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_OUT = Path("bench/results/reminder_scale.json")
APSCHEDULER_MAX = 100_000
KNOWN_ID = "bench-known"
DUE_AFTER_SPAWN = timedelta(seconds=3)
NOTIFY_TOPIC = "needlecare/mirror/hallway/notify"
QUERY_CALLS = 200
OPEN_CALLS = 20
FLOOR_RUNS = 3
IDLE_S = 1.0
STOP_TIMEOUT_S = 15.0
YEAR = timedelta(days=365)
MIB = 1024 * 1024
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


# -- small measurements ------------------------------------------------------------


def summary(seconds: Sequence[float], scale: float) -> dict[str, float]:
    """Median and p99 of durations, multiplied by ``scale`` (1e3 for ms, 1e6 for µs).

    The report keeps only these two, as ``median`` and ``p99``: docs/PERFORMANCE.md quotes them.
    """
    figures = percentiles(seconds, scale)
    return {"median": figures["p50"], "p99": figures["p99"]}


def timed_calls(call: Callable[[], object], count: int = QUERY_CALLS) -> list[float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


# -- the store -----------------------------------------------------------------------


def _rows(count: int, now: datetime) -> Iterator[tuple[str, str, str, str]]:
    """Pending reminders due from an hour from now to a year from now, in due order."""
    created = to_db(now)
    first = now + timedelta(hours=1)
    step = YEAR / max(count, 1)
    for i in range(count):
        due = to_db(first + step * i)
        yield f"bench-{i:07d}", due, due, created


def seed(path: Path, count: int, now: datetime) -> float:
    """Create the schema with the store, then insert ``count`` reminders in one transaction."""
    SqliteStore.open(path, now=now).close()
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # seeding only; the daemon opens with FULL
        conn.execute("BEGIN")
        conn.executemany(_INSERT, _rows(count, now))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def add_known(path: Path, due_at: datetime) -> None:
    """The one reminder the daemon must deliver during the run, written by the store itself."""
    now = wall_clock()
    store = SqliteStore.open(path, now=now)
    try:
        store.reminders.save(
            Reminder(
                id=KNOWN_ID,
                session_id=None,
                profile="alice",
                kind="window_open",
                title="Bench reminder",
                message="Due three seconds after the daemon was spawned.",
                severity=Severity.INFO,
                channels=(Channel.MIRROR,),
                needs_ack=False,
                escalation=(),
                status=ReminderStatus.PENDING,
                due_at=due_at,
                planned_at=due_at,
                created_at=now,
            )
        )
    finally:
        store.close()


def measure_store(path: Path) -> dict[str, Any]:
    """Open the N-row file, then time the queries the core loop uses to find what is due."""
    opens = []
    for _ in range(OPEN_CALLS):
        started = time.perf_counter()
        store = SqliteStore.open(path, now=wall_clock())
        opens.append(time.perf_counter() - started)
        store.close()
    store = SqliteStore.open(path, now=wall_clock())
    try:
        reminders = store.reminders
        next_due = reminders.next_due_at()
        if next_due is None:
            raise BenchError(f"no pending reminder in {path}")
        now = wall_clock()
        known = reminders.get(KNOWN_ID)
        return {
            "open_ms": summary(opens, 1e3),
            "next_due_at_us": summary(timed_calls(reminders.next_due_at), 1e6),
            "due_next_us": summary(timed_calls(lambda: reminders.due(next_due)), 1e6),
            "due_now_us": summary(timed_calls(lambda: reminders.due(now)), 1e6),
            "due_next_rows": len(reminders.due(next_due)),
            "due_now_rows": len(reminders.due(now)),
            "known_status": None if known is None else known.status.value,
        }
    finally:
        store.close()


# -- the daemon as a process -----------------------------------------------------------


class NotifyWatch:
    """Stamps the known reminder's arrival on the notify topic, by the wall clock as ``due_at``."""

    def __init__(self) -> None:
        self.received_at: datetime | None = None
        self._arrived = threading.Event()

    def wait(self, timeout: float) -> datetime | None:
        self._arrived.wait(timeout)
        return self.received_at

    def on_message(self, message: mqtt.MQTTMessage, _stamp: float) -> None:
        stamp = wall_clock()
        try:
            body = json.loads(message.payload)
        except ValueError:
            return  # not JSON, so not the known reminder
        if (
            isinstance(body, dict)
            and body.get("reminder_id") == KNOWN_ID
            and self.received_at is None
        ):
            self.received_at = stamp
            self._arrived.set()


def measure_daemon(workdir: Path, db: Path) -> dict[str, Any]:
    """Start-up, idle RSS and the known reminder's delivery, with a broker of its own."""
    with ExitStack() as stack:
        broker = stack.enter_context(running_broker(workdir / "broker"))
        watch = NotifyWatch()
        peer = Peer(
            broker.host, broker.port, client_id="bench-notify-watch", on_message=watch.on_message
        )
        stack.enter_context(peer).subscribe(NOTIFY_TOPIC)
        config = daemon_config(
            broker, db, profiles={"alice": {"timezone": "Europe/Berlin"}}, mirrors={"hallway": {}}
        )
        daemon = Daemon(workdir, config)
        due_at = wall_clock() + DUE_AFTER_SPAWN
        add_known(db, due_at)
        daemon.start()
        stack.callback(daemon.stop, STOP_TIMEOUT_S)
        started_s = daemon.wait_for("daemon_started") - daemon.spawned_at
        connected_s = daemon.wait_for("mqtt_connected") - daemon.spawned_at
        time.sleep(IDLE_S)
        rss, peak = rss_mib(daemon.pid), rss_mib(daemon.pid, "VmHWM")
        wait_s = (due_at - wall_clock()).total_seconds() + 15
        received_at = watch.wait(max(wait_s, 1.0))
        exit_code = daemon.stop(STOP_TIMEOUT_S)
    late = None if received_at is None else (received_at - due_at).total_seconds() * 1e3
    return {
        "started_s": started_s,
        "connected_s": connected_s,
        "rss_mib": rss,
        "rss_peak_mib": peak,
        "notified": received_at is not None,
        "lateness_ms": late,
        "exit_code": exit_code,
    }


def import_floor() -> dict[str, float]:
    """Interpreter start plus the imports of ``needlecare run``: the daemon's floor.

    The child prints time.monotonic() once imported: CLOCK_MONOTONIC is one clock for
    every process on Linux, so the difference to our spawn time excludes its exit.
    """
    runs = []
    for _ in range(FLOOR_RUNS):
        spawned = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", _FLOOR_CODE], capture_output=True, text=True, check=True
        )
        fields = dict(line.partition(":")[::2] for line in done.stdout.splitlines())
        imported = float(fields["imported"])
        rss_kib = int(fields["VmRSS"].split()[0])
        runs.append((imported - spawned, rss_kib / KIB_PER_MIB))
    return {"seconds": statistics.median(r[0] for r in runs), "rss_mib": max(r[1] for r in runs)}


# -- the alternative: APScheduler with a job per reminder -----------------------------------


def _noop() -> None:
    """The job body; never runs, every job is months away."""


def apscheduler_child(count: int) -> dict[str, Any]:
    """In a fresh process: add ``count`` date jobs to a running BackgroundScheduler."""
    now = wall_clock()
    step = YEAR / count
    times = [now + timedelta(hours=1) + step * i for i in range(count)]
    random.Random(count).shuffle(times)  # reminders are planned in no particular due order
    scheduler = BackgroundScheduler(jobstores={"default": MemoryJobStore()}, timezone=UTC)
    scheduler.start()
    try:
        gc.collect()
        before = rss_mib(os.getpid())
        started = time.perf_counter()
        for i, when in enumerate(times):
            scheduler.add_job(_noop, DateTrigger(run_date=when), id=f"r{i}")
        elapsed = time.perf_counter() - started
        after = rss_mib(os.getpid())
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


def measure_apscheduler(count: int) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(apscheduler_child, (count,))
    return result


# -- the run -------------------------------------------------------------------------------


def measure_size(size: int, workdir: Path, *, apscheduler: bool) -> dict[str, Any]:
    workdir.mkdir(parents=True)
    db = workdir / "needlecare.db"
    progress(f"N={size:,}: seeding")
    seed_s = seed(db, size - 1, wall_clock())
    file_mib = db.stat().st_size / MIB
    progress(f"N={size:,}: daemon")
    daemon = measure_daemon(workdir, db)
    progress(f"N={size:,}: store queries")
    store = measure_store(db)
    if apscheduler:
        progress(f"N={size:,}: APScheduler, {size:,} jobs")
    return {
        "size": size,
        "seed_s": seed_s,
        "file_mib": file_mib,
        "daemon": daemon,
        "store": store,
        "apscheduler": measure_apscheduler(size) if apscheduler else None,
    }


def run(sizes: Sequence[int], *, apscheduler_max: int, workdir: Path | None) -> dict[str, Any]:
    """Every measurement, as the JSON report."""
    started_at = wall_clock()
    source_before = source_state()
    with workspace(workdir, "bench-") as work:
        progress("import floor")
        floor = import_floor()
        results = [
            measure_size(size, work / f"n{size}", apscheduler=size <= apscheduler_max)
            for size in sizes
        ]
        machine_info = {
            **machine(work, source_before=source_before),
            # this report's own: the APScheduler it compares against, and cpu_count beside nproc
            "cpu_count": os.cpu_count(),
            "apscheduler": metadata.version("APScheduler"),
        }
    return {
        "bench": "reminder_scale",
        "started_at": started_at.isoformat(),
        "finished_at": wall_clock().isoformat(),
        "machine": machine_info,
        "sizes": list(sizes),
        "apscheduler_max": apscheduler_max,
        "import_floor": floor,
        "results": results,
    }


# -- output ----------------------------------------------------------------------------------


def _pair(figures: dict[str, float], digits: int = 0) -> str:
    return f"{figures['median']:.{digits}f} / {figures['p99']:.{digits}f}"


def _daemon_row(r: dict[str, Any]) -> list[str]:
    daemon = r["daemon"]
    late = daemon["lateness_ms"]
    return [
        f"{r['size']:,}",
        f"{r['seed_s']:.1f}",
        f"{r['file_mib']:.1f}",
        f"{daemon['started_s']:.2f}",
        f"{daemon['connected_s']:.2f}",
        f"{daemon['rss_mib']:.1f}",
        "yes" if daemon["notified"] else "NO",
        "-" if late is None else f"{late:.1f}",
    ]


def _store_row(r: dict[str, Any]) -> list[str]:
    store = r["store"]
    timings = ("next_due_at_us", "due_next_us", "due_now_us")
    return [f"{r['size']:,}", _pair(store["open_ms"], 2), *(_pair(store[t]) for t in timings)]


def _apscheduler_row(r: dict[str, Any]) -> list[str]:
    aps = r["apscheduler"]
    return [
        f"{r['size']:,}",
        f"{aps['add_s']:.2f}",
        f"{aps['per_job_us']:.1f}",
        f"{aps['rss_growth_mib']:.1f}",
    ]


def render(report: dict[str, Any]) -> str:
    """The report as three tables and the import floor, for people."""
    results = report["results"]
    aps = [_apscheduler_row(r) for r in results if r["apscheduler"] is not None]
    floor = report["import_floor"]
    daemon_headers = ("N", "seed s", "file MiB", "started s", "connected s", "idle RSS MiB")
    store_headers = ("N", "open ms", "next_due_at µs", "due(next) µs", "due(now) µs")
    parts = [
        "Daemon with N pending reminders (times from spawn; lateness of the known reminder)",
        table((*daemon_headers, "notified", "late ms"), [_daemon_row(r) for r in results]),
        "",
        "Store, in process (median / p99 over calls)",
        table(store_headers, [_store_row(r) for r in results]),
        "",
        "APScheduler 3, one date job per reminder (MemoryJobStore, fresh process)",
        table(("N", "add s", "µs/job", "RSS +MiB"), aps) if aps else "(not run)",
        "",
        "Import floor (python -c 'import needlecare.cli.main, needlecare.app.run'):"
        f" {floor['seconds']:.2f} s, {floor['rss_mib']:.1f} MiB RSS",
    ]
    return "\n".join(parts)


def _sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes are positive integers, e.g. 10000,100000")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "bench.reminder_scale",
        __doc__,
        out=DEFAULT_OUT,
        workdir_help="keep stores and logs here (default: a temp dir)",
    )
    parser.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES))
    parser.add_argument(
        "--apscheduler-max",
        type=int,
        default=APSCHEDULER_MAX,
        help="run the APScheduler comparison for sizes up to this (0: never)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the tables, write the JSON; exit 1 if a known reminder never arrived."""
    args = parse_args(argv)
    quiet_logs()
    report = run(args.sizes, apscheduler_max=args.apscheduler_max, workdir=args.workdir)
    finish(report, args.out, render)
    return 0 if all(r["daemon"]["notified"] for r in report["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
