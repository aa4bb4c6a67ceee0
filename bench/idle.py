"""Idle cost: the daemon with N pending reminders, connected and doing nothing.

/proc at both ends of --idle seconds: CPU of the process and each thread, voluntary
context switches per thread (one per wake-up), RSS and its peak; thread names from
``py-spy dump`` when installed. Targets: no thread polls (paho's loop wakes every
``max(1, keepalive/4)`` s plus the ping), RSS <= 60 MiB.
"""

import time
from pathlib import Path
from typing import Any

from bench.harness.daemon import ONE_PROFILE, running_daemon
from bench.harness.proc import (
    ThreadSample,
    cpu_seconds,
    python_thread_names,
    rss_mib,
    thread_samples,
    wait_idle,
)
from bench.harness.report import Bench, fmt, load_average, now, progress, table, verdict, wall_clock
from bench.reminder_scale import seed

KEEPALIVE_S = 60  # the daemon's default mqtt.keepalive_s
TARGET_RSS_MIB = 60.0
# A thread that wakes at most this often per minute is not polling: paho's loop,
# at the default keepalive, wakes 4 times (select timeout) + once for the ping.
POLLING_WAKES_PER_MIN = 10.0


def thread_rows(before: dict[int, ThreadSample], after: dict[int, ThreadSample],
                names: dict[int, str], seconds: float) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for tid, end in sorted(after.items()):
        start = before.get(tid, ThreadSample(tid, end.comm, 0.0, 0, 0))
        voluntary = end.voluntary - start.voluntary
        rows.append({"tid": tid, "name": names.get(tid, end.comm),
                     "cpu_ms": (end.cpu_s - start.cpu_s) * 1e3, "voluntary": voluntary,
                     "nonvoluntary": end.nonvoluntary - start.nonvoluntary,
                     "wakes_per_min": voluntary / seconds * 60,
                     "new_during_run": tid not in before})  # fmt: skip
    return rows


def run(args: Any, work: Path) -> dict[str, Any]:
    progress(f"idle: seeding {args.pending:,} pending reminders")
    seed_s = seed(work / "needlecare.db", args.pending, wall_clock())
    sections = {"profiles": ONE_PROFILE, "mirrors": {"hallway": {}}}
    with running_daemon(work, start=False, mqtt={"keepalive_s": KEEPALIVE_S}, **sections) as d:
        d.start()
        connected_s = d.wait_for("mqtt_connected") - d.spawned_at
        wait_idle(d.pid, quiet_s=1.0)
        names = python_thread_names(d.pid)  # py-spy pauses it: before the window
        time.sleep(1.0)
        progress(f"idle: sampling for {args.idle:g} s")
        before, cpu_before, started = thread_samples(d.pid), cpu_seconds(d.pid), now()
        time.sleep(args.idle)
        after, cpu_after, seconds = thread_samples(d.pid), cpu_seconds(d.pid), now() - started
        rss, peak = rss_mib(d.pid), rss_mib(d.pid, "VmHWM")
        exit_code = d.stop()
    threads = thread_rows(before, after, names, seconds)
    pollers = [t["name"] for t in threads if t["wakes_per_min"] > POLLING_WAKES_PER_MIN]
    cpu_s = cpu_after - cpu_before
    return {"pending": args.pending, "keepalive_s": KEEPALIVE_S,
            "expected_paho_wakes_per_min": 60 / max(1.0, KEEPALIVE_S / 4) + 60 / KEEPALIVE_S,
            "seed_s": seed_s, "connected_s": connected_s, "idle_s": seconds,
            "cpu_ms": cpu_s * 1e3, "cpu_share": cpu_s / seconds, "rss_mib": rss,
            "rss_peak_mib": peak, "threads": threads,
            "thread_names_from": "py-spy dump" if names else "/proc comm",
            "exit_code": exit_code, "polling_threads": pollers, "target_rss_mib": TARGET_RSS_MIB,
            "target_met": rss <= TARGET_RSS_MIB and not pollers,
            "load_average": load_average()}  # fmt: skip


def render(report: dict[str, Any]) -> str:
    rows = [
        [t["name"] + (" (new)" if t["new_during_run"] else ""), str(t["tid"]), str(t["voluntary"]),
         fmt(t["wakes_per_min"], 1), str(t["nonvoluntary"]), fmt(t["cpu_ms"], 1)]
        for t in report["threads"]
    ]  # fmt: skip
    target, pollers = report["target_rss_mib"], ", ".join(report["polling_threads"]) or "none"
    return "\n".join([
        f"Idle: {report['pending']:,} pending reminders, connected, idle for"
        f" {report['idle_s']:.1f} s (keepalive {report['keepalive_s']} s;"
        f" thread names from {report['thread_names_from']})",
        table(("thread", "tid", "wakes", "wakes/min", "involuntary", "CPU ms"), rows),
        "",
        f"process CPU: {report['cpu_ms']:.1f} ms ({report['cpu_share']:.3%} of a core);"
        f" RSS {report['rss_mib']:.1f} MiB (peak {report['rss_peak_mib']:.1f});"
        f" connected {report['connected_s']:.2f} s after spawn",
        f"RSS <= {target:g} MiB: {verdict(report['rss_mib'] <= target)};"
        f" threads waking > {POLLING_WAKES_PER_MIN:g}/min (polling): {pollers};"
        f" paho expected {report['expected_paho_wakes_per_min']:.0f}/min",
    ])  # fmt: skip


OPTIONS = {"--pending": (int, 100_000, "pending reminders"),
           "--idle": (float, 60.0, "seconds to sample")}  # fmt: skip
BENCH = Bench("idle", __doc__, run, render, ok=lambda r: r["exit_code"] == 0, options=OPTIONS)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
