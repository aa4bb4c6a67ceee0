"""Idle cost: the daemon with many pending reminders, connected and doing nothing.

The store is seeded as ``bench.reminder_scale`` does (N pending reminders, due from
an hour to a year ahead, so nothing falls due during the run). The daemon runs
against its own Mosquitto; once connected and settled, the bench samples
/proc/<pid> at the start and the end of --idle seconds:

* CPU seconds (utime + stime) of the process and of each thread;
* context switches of each thread (/proc/<pid>/task/<tid>/status): a thread that
  sleeps and wakes makes one voluntary switch per wake-up, so voluntary switches per
  minute are its wake-ups per minute;
* RSS (VmRSS) at the end, and its peak (VmHWM).

Thread names come from ``py-spy dump`` when py-spy is installed. Expected: the core
loop and the scheduler never wake (no polling); paho's loop wakes every
``max(1, keepalive/4)`` s (the select timeout of ``MqttClient._pump``) plus the
keepalive PINGREQ/PINGRESP once per keepalive.

    python -m bench.idle [--pending 100000] [--idle 60]
"""

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import (
    Daemon,
    ThreadSample,
    bench_parser,
    cpu_seconds,
    daemon_config,
    finish,
    fmt,
    load_average,
    machine,
    now,
    progress,
    python_thread_names,
    quiet_logs,
    rss_mib,
    running_broker,
    source_state,
    table,
    thread_samples,
    verdict,
    wait_idle,
    wall_clock,
    workspace,
)
from bench.reminder_scale import seed

DEFAULT_PENDING = 100_000
DEFAULT_IDLE_S = 60.0
DEFAULT_OUT = Path("bench/results/idle.json")
KEEPALIVE_S = 60  # the daemon's default mqtt.keepalive_s
SETTLE_S = 1.0
TARGET_RSS_MIB = 60.0
# A thread that wakes at most this often per minute is not polling: paho's loop,
# at the default keepalive, wakes 4 times (select timeout) + once for the ping.
POLLING_WAKES_PER_MIN = 10.0


def _thread_rows(
    before: dict[int, ThreadSample],
    after: dict[int, ThreadSample],
    names: dict[int, str],
    seconds: float,
) -> list[dict[str, Any]]:
    rows = []
    for tid, end in sorted(after.items()):
        start = before.get(tid, ThreadSample(tid, end.comm, 0.0, 0, 0))
        voluntary = end.voluntary - start.voluntary
        rows.append(
            {
                "tid": tid,
                "name": names.get(tid, end.comm),
                "cpu_ms": (end.cpu_s - start.cpu_s) * 1e3,
                "voluntary": voluntary,
                "nonvoluntary": end.nonvoluntary - start.nonvoluntary,
                "wakes_per_min": voluntary / seconds * 60,
                "new_during_run": tid not in before,
            }
        )
    return rows


def measure(work: Path, pending: int, idle_s: float) -> dict[str, Any]:
    """Seed, start, settle, then sample the idle daemon."""
    db = work / "needlecare.db"
    quiet_logs()
    progress(f"idle: seeding {pending:,} pending reminders")
    seed_s = seed(db, pending, wall_clock())
    with running_broker(work / "broker") as broker:
        config = daemon_config(
            broker,
            db,
            mqtt={"keepalive_s": KEEPALIVE_S},
            profiles={"alice": {"timezone": "Europe/Berlin"}},
            mirrors={"hallway": {}},
        )
        daemon = Daemon(work, config).start()
        try:
            connected_s = daemon.wait_for("mqtt_connected") - daemon.spawned_at
            wait_idle(daemon.pid, quiet_s=SETTLE_S)
            names = python_thread_names(daemon.pid)  # py-spy pauses it: before the window
            time.sleep(SETTLE_S)
            progress(f"idle: sampling for {idle_s:g} s")
            before, cpu_before, started = thread_samples(daemon.pid), cpu_seconds(daemon.pid), now()
            time.sleep(idle_s)
            after, cpu_after = thread_samples(daemon.pid), cpu_seconds(daemon.pid)
            seconds = now() - started
            rss, peak = rss_mib(daemon.pid), rss_mib(daemon.pid, "VmHWM")
            exit_code = daemon.stop()
        finally:
            daemon.stop()
    threads = _thread_rows(before, after, names, seconds)
    return {
        "seed_s": seed_s,
        "connected_s": connected_s,
        "idle_s": seconds,
        "cpu_ms": (cpu_after - cpu_before) * 1e3,
        "cpu_share": (cpu_after - cpu_before) / seconds,
        "rss_mib": rss,
        "rss_peak_mib": peak,
        "threads": threads,
        "thread_names_from": "py-spy dump" if names else "/proc comm",
        "exit_code": exit_code,
    }


def run(pending: int, *, idle_s: float, workdir: Path | None = None) -> dict[str, Any]:
    """The idle measurement, as the JSON report."""
    started_at = wall_clock()
    source_before = source_state()
    load_before = load_average()
    with workspace(workdir, "bench-idle-") as work:
        result = measure(work, pending, idle_s)
        machine_info = machine(work, source_before=source_before)
    pollers = [t["name"] for t in result["threads"] if t["wakes_per_min"] > POLLING_WAKES_PER_MIN]
    return {
        "bench": "idle",
        "started_at": started_at.isoformat(),
        "finished_at": wall_clock().isoformat(),
        "machine": machine_info,
        "pending": pending,
        "keepalive_s": KEEPALIVE_S,
        "expected_paho_wakes_per_min": 60 / max(1.0, KEEPALIVE_S / 4) + 60 / KEEPALIVE_S,
        "load_average_before": load_before,
        **result,
        "polling_threads": pollers,
        "target_rss_mib": TARGET_RSS_MIB,
        "target_met": result["rss_mib"] <= TARGET_RSS_MIB and not pollers,
    }


def render(report: dict[str, Any]) -> str:
    headers = ("thread", "tid", "wakes", "wakes/min", "involuntary", "CPU ms")
    rows = [
        [
            t["name"] + (" (new)" if t["new_during_run"] else ""),
            str(t["tid"]),
            str(t["voluntary"]),
            fmt(t["wakes_per_min"], 1),
            str(t["nonvoluntary"]),
            fmt(t["cpu_ms"], 1),
        ]
        for t in report["threads"]
    ]
    target = report["target_rss_mib"]
    pollers = ", ".join(report["polling_threads"]) or "none"
    return "\n".join(
        [
            f"Idle: {report['pending']:,} pending reminders, connected, idle for"
            f" {report['idle_s']:.1f} s (keepalive {report['keepalive_s']} s;"
            f" thread names from {report['thread_names_from']})",
            table(headers, rows),
            "",
            f"process CPU: {report['cpu_ms']:.1f} ms ({report['cpu_share']:.3%} of a core);"
            f" RSS {report['rss_mib']:.1f} MiB (peak {report['rss_peak_mib']:.1f});"
            f" connected {report['connected_s']:.2f} s after spawn",
            f"RSS <= {target:g} MiB: {verdict(report['rss_mib'] <= target)};"
            f" threads waking > {POLLING_WAKES_PER_MIN:g}/min (polling): {pollers};"
            f" paho expected {report['expected_paho_wakes_per_min']:.0f}/min",
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "bench.idle", __doc__, out=DEFAULT_OUT, workdir_help="keep the store and logs here"
    )
    parser.add_argument("--pending", type=int, default=DEFAULT_PENDING)
    parser.add_argument("--idle", type=float, default=DEFAULT_IDLE_S, help="seconds to sample")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, write the JSON; exit 1 if the daemon did not stop cleanly."""
    args = parse_args(argv)
    if args.pending < 1 or args.idle <= 0:
        raise SystemExit("--pending and --idle must be positive")
    report = run(args.pending, idle_s=args.idle, workdir=args.workdir)
    finish(report, args.out, render)
    return 0 if report["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
