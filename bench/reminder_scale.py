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
import platform
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import paho.mqtt.client as mqtt
import yaml
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from paho.mqtt.enums import CallbackAPIVersion

from needlecare.domain.protocol import Channel, Severity
from needlecare.domain.reminders import Reminder, ReminderStatus
from needlecare_integrations.broker import MosquittoBroker
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
TIMEOUT_S = 60.0
YEAR = timedelta(days=365)
KIB_PER_MIB = 1024
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


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says what was missing."""


def wall_clock() -> datetime:
    """Aware UTC now. The bench is not the daemon: it stamps results and lateness itself."""
    return datetime.now(UTC)  # noqa: TID251 - no injected Clock outside the daemon


# -- small measurements ------------------------------------------------------------


def proc_status_mib(pid: int, key: str) -> float:
    """A ``VmRSS``-style line of /proc/<pid>/status, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / KIB_PER_MIB
    raise BenchError(f"no {key} in /proc/{pid}/status")


def summary(seconds: Sequence[float], scale: float) -> dict[str, float]:
    """Median and p99 of durations, multiplied by ``scale`` (1e3 for ms, 1e6 for µs)."""
    p99 = statistics.quantiles(seconds, n=100, method="inclusive")[98]
    return {"median": statistics.median(seconds) * scale, "p99": p99 * scale}


def timed_calls(call: Callable[[], object], count: int = QUERY_CALLS) -> list[float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        table = store.reminders
        next_due = table.next_due_at()
        if next_due is None:
            raise BenchError(f"no pending reminder in {path}")
        now = wall_clock()
        known = table.get(KNOWN_ID)
        return {
            "open_ms": summary(opens, 1e3),
            "next_due_at_us": summary(timed_calls(table.next_due_at), 1e6),
            "due_next_us": summary(timed_calls(lambda: table.due(next_due)), 1e6),
            "due_now_us": summary(timed_calls(lambda: table.due(now)), 1e6),
            "due_next_rows": len(table.due(next_due)),
            "due_now_rows": len(table.due(now)),
            "known_status": None if known is None else known.status.value,
        }
    finally:
        store.close()


# -- the daemon as a process -----------------------------------------------------------


def daemon_config(broker: MosquittoBroker, db: Path) -> dict[str, Any]:
    return {
        "profiles": {"alice": {"timezone": "Europe/Berlin"}},
        "mirrors": {"hallway": {}},
        "store": {"path": str(db)},
        "mqtt": {"host": broker.host, "port": broker.port},
        "logging": {"level": "INFO", "format": "json"},
    }


def _event_name(line: bytes) -> str | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry.get("event") if isinstance(entry, dict) else None


class DaemonRun:
    """``needlecare run`` as a process; a thread stamps the first line of each log event."""

    def __init__(self, workdir: Path, broker: MosquittoBroker, db: Path) -> None:
        self.workdir = workdir
        self.config_path = workdir / "needlecare.yaml"
        self.log_path = workdir / "daemon.log"
        self.config_path.write_text(yaml.safe_dump(daemon_config(broker, db)), encoding="utf-8")
        self.first_seen: dict[str, float] = {}
        self.spawned_at = 0.0
        self._changed = threading.Condition()
        self._eof = False
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BenchError("the daemon was not started")
        return self._process.pid

    def start(self) -> None:
        command = [sys.executable, "-m", "needlecare", "run", "-c", str(self.config_path)]
        self.spawned_at = time.perf_counter()
        self._process = subprocess.Popen(
            command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self._process.stderr,))
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        with stream, self.log_path.open("wb") as log:
            for line in stream:
                stamp = time.perf_counter()
                log.write(line)
                event = _event_name(line)
                with self._changed:
                    if event is not None:
                        self.first_seen.setdefault(event, stamp)
                    self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def seconds_to(self, event: str, timeout: float = TIMEOUT_S) -> float:
        """Seconds from the spawn to the first ``event`` log line."""
        with self._changed:
            self._changed.wait_for(lambda: event in self.first_seen or self._eof, timeout)
            stamp = self.first_seen.get(event)
        if stamp is None:
            log = self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
            raise BenchError(f"no {event} from the daemon within {timeout} s; its log:\n{log}")
        return stamp - self.spawned_at

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; the exit code of the SIGTERM, else None."""
        process = self._process
        if process is None:
            return None
        code: int | None = process.poll()
        if code is None:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join()
        return code


class NotifyWatch:
    """A paho subscriber on the mirror's notify topic, stamping the known reminder's arrival."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self._broker = broker
        self.received_at: datetime | None = None
        self._arrived = threading.Event()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-notify-watch")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def __enter__(self) -> Self:
        self._client.connect(self._broker.host, self._broker.port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.__exit__(None, None, None)
            raise BenchError("the notify subscriber got no SUBACK")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def wait(self, timeout: float) -> datetime | None:
        self._arrived.wait(timeout)
        return self.received_at

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(NOTIFY_TOPIC, qos=1)

    def _on_subscribe(self, *_: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        stamp = wall_clock()
        try:
            body = json.loads(message.payload)
        except ValueError:
            return  # never raise into paho's network thread
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
        broker = MosquittoBroker(data_dir=workdir / "broker", port=free_port(), persistence=False)
        broker.start()
        stack.callback(broker.close)
        watch = stack.enter_context(NotifyWatch(broker))
        daemon = DaemonRun(workdir, broker, db)
        due_at = wall_clock() + DUE_AFTER_SPAWN
        add_known(db, due_at)
        daemon.start()
        stack.callback(daemon.stop)
        started_s = daemon.seconds_to("daemon_started")
        connected_s = daemon.seconds_to("mqtt_connected")
        time.sleep(IDLE_S)
        rss, peak = proc_status_mib(daemon.pid, "VmRSS"), proc_status_mib(daemon.pid, "VmHWM")
        wait_s = (due_at - wall_clock()).total_seconds() + 15
        received_at = watch.wait(max(wait_s, 1.0))
        exit_code = daemon.stop()
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
        before = proc_status_mib(os.getpid(), "VmRSS")
        started = time.perf_counter()
        for i, when in enumerate(times):
            scheduler.add_job(_noop, DateTrigger(run_date=when), id=f"r{i}")
        elapsed = time.perf_counter() - started
        after = proc_status_mib(os.getpid(), "VmRSS")
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
    _progress(f"N={size:,}: seeding")
    seed_s = seed(db, size - 1, wall_clock())
    file_mib = db.stat().st_size / MIB
    _progress(f"N={size:,}: daemon")
    daemon = measure_daemon(workdir, db)
    _progress(f"N={size:,}: store queries")
    store = measure_store(db)
    if apscheduler:
        _progress(f"N={size:,}: APScheduler, {size:,} jobs")
    return {
        "size": size,
        "seed_s": seed_s,
        "file_mib": file_mib,
        "daemon": daemon,
        "store": store,
        "apscheduler": measure_apscheduler(size) if apscheduler else None,
    }


def machine() -> dict[str, Any]:
    mosquitto = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "apscheduler": metadata.version("APScheduler"),
        "paho_mqtt": metadata.version("paho-mqtt"),
        "mosquitto": (mosquitto.stdout.splitlines() or [""])[0],
    }


def run(sizes: Sequence[int], *, apscheduler_max: int, workdir: Path | None) -> dict[str, Any]:
    """Every measurement, as the JSON report."""
    started_at = wall_clock()
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        _progress("import floor")
        floor = import_floor()
        results = [
            measure_size(size, workdir / f"n{size}", apscheduler=size <= apscheduler_max)
            for size in sizes
        ]
    return {
        "bench": "reminder_scale",
        "started_at": started_at.isoformat(),
        "finished_at": wall_clock().isoformat(),
        "machine": machine(),
        "sizes": list(sizes),
        "apscheduler_max": apscheduler_max,
        "import_floor": floor,
        "results": results,
    }


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


# -- output ----------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


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
        _table((*daemon_headers, "notified", "late ms"), [_daemon_row(r) for r in results]),
        "",
        "Store, in process (median / p99 over calls)",
        _table(store_headers, [_store_row(r) for r in results]),
        "",
        "APScheduler 3, one date job per reminder (MemoryJobStore, fresh process)",
        _table(("N", "add s", "µs/job", "RSS +MiB"), aps) if aps else "(not run)",
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
    parser = argparse.ArgumentParser(
        prog="python -m bench.reminder_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--apscheduler-max",
        type=int,
        default=APSCHEDULER_MAX,
        help="run the APScheduler comparison for sizes up to this (0: never)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep stores and logs here (default: a temp dir)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the tables, write the JSON; exit 1 if a known reminder never arrived."""
    args = parse_args(argv)
    report = run(args.sizes, apscheduler_max=args.apscheduler_max, workdir=args.workdir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render(report))
    print(f"\nwritten to {args.out}")
    return 0 if all(r["daemon"]["notified"] for r in report["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
