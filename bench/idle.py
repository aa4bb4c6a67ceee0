"""Idle cost: the daemon with N pending reminders, connected and doing nothing.

/proc at both ends of --idle seconds: CPU of the process and each thread, voluntary
context switches per thread (one per wake-up), RSS and its peak; thread names from
``py-spy dump`` when installed. Targets: no thread polls (paho's loop wakes every
``max(1, keepalive/4)`` s plus the ping), RSS <= 60 MiB.
"""

import time
from pathlib import Path
from typing import Any

from bench.harness.daemon import ONE_PROFILE, running_daemon, seed_reminders
from bench.harness.proc import ThreadSample, cpu_seconds, python_thread_names, rss_mib, wait_idle
from bench.harness.proc import thread_samples as threads_of
from bench.harness.report import (
    Bench,
    columns,
    fmt,
    load_average,
    now,
    progress,
    verdict,
    wall_clock,
)

KEEPALIVE_S = 60  # the daemon's default mqtt.keepalive_s
TARGET_RSS_MIB = 60.0
# A thread that wakes at most this often per minute is not polling: paho's loop,
# at the default keepalive, wakes 4 times (select timeout) + once for the ping.
POLLING_WAKES_PER_MIN = 10.0


def thread_row(
    before: dict[int, ThreadSample], end: ThreadSample, name: str, seconds: float
) -> Any:
    start = before.get(end.tid, ThreadSample(end.tid, end.comm, 0.0, 0, 0))
    voluntary = end.voluntary - start.voluntary
    return {
        "tid": end.tid,
        "name": name,
        "cpu_ms": (end.cpu_s - start.cpu_s) * 1e3,
        "voluntary": voluntary,
        "nonvoluntary": end.nonvoluntary - start.nonvoluntary,
        "wakes_per_min": voluntary / seconds * 60,
        "new_during_run": end.tid not in before,
    }


def run(args: Any, work: Path) -> dict[str, Any]:
    progress(f"idle: seeding {args.pending:,} pending reminders")
    r: dict[str, Any] = {"pending": args.pending, "keepalive_s": KEEPALIVE_S}
    r["expected_paho_wakes_per_min"] = 60 / max(1.0, KEEPALIVE_S / 4) + 60 / KEEPALIVE_S
    r["seed_s"] = seed_reminders(work / "needlecare.db", args.pending, wall_clock())
    sections = {"profiles": ONE_PROFILE, "mirrors": {"hallway": {}}}
    with running_daemon(work, start=False, mqtt={"keepalive_s": KEEPALIVE_S}, **sections) as d:
        d.start()
        r["connected_s"] = d.wait_for("mqtt_connected") - d.spawned_at
        wait_idle(d.pid, quiet_s=1.0)
        names = python_thread_names(d.pid)  # py-spy pauses it: before the window
        time.sleep(1.0)
        progress(f"idle: sampling for {args.idle:g} s")
        before, cpu_before, started = threads_of(d.pid), cpu_seconds(d.pid), now()
        time.sleep(args.idle)
        after, cpu_s, seconds = threads_of(d.pid), cpu_seconds(d.pid) - cpu_before, now() - started
        rss, r["rss_peak_mib"] = rss_mib(d.pid), rss_mib(d.pid, "VmHWM")
        r["exit_code"] = d.stop()
    ends = sorted(after.items())
    r["threads"] = [thread_row(before, e, names.get(t, e.comm), seconds) for t, e in ends]
    pollers = [t["name"] for t in r["threads"] if t["wakes_per_min"] > POLLING_WAKES_PER_MIN]
    r |= {"idle_s": seconds, "cpu_ms": cpu_s * 1e3, "cpu_share": cpu_s / seconds, "rss_mib": rss}
    r["thread_names_from"] = "py-spy dump" if names else "/proc comm"
    r |= {"polling_threads": pollers, "target_rss_mib": TARGET_RSS_MIB}
    r["target_met"] = rss <= TARGET_RSS_MIB and not pollers
    return r | {"load_average": load_average()}


THREADS = {
    "thread": lambda t: t["name"] + (" (new)" if t["new_during_run"] else ""),
    "tid": lambda t: t["tid"],
    "wakes": lambda t: t["voluntary"],
    "wakes/min": lambda t: fmt(t["wakes_per_min"], 1),
    "involuntary": lambda t: t["nonvoluntary"],
    "CPU ms": lambda t: fmt(t["cpu_ms"], 1),
}
TEXT = """\
Idle: {pending:,} pending reminders, connected, idle for {idle_s:.1f} s \
(keepalive {keepalive_s} s; thread names from {thread_names_from})
{threads}

process CPU: {cpu_ms:.1f} ms ({cpu_share:.3%} of a core); RSS {rss_mib:.1f} MiB \
(peak {rss_peak_mib:.1f}); connected {connected_s:.2f} s after spawn
RSS <= {target_rss_mib:g} MiB: {verdict}; threads waking > {polling:g}/min (polling): \
{pollers}; paho expected {expected_paho_wakes_per_min:.0f}/min"""


def render(r: dict[str, Any]) -> str:
    pollers = ", ".join(r["polling_threads"]) or "none"
    verdict_ = verdict(r["rss_mib"] <= r["target_rss_mib"])
    return TEXT.format_map(
        r
        | {
            "threads": columns(THREADS, r["threads"]),
            "verdict": verdict_,
            "polling": POLLING_WAKES_PER_MIN,
            "pollers": pollers,
        }
    )


OPTIONS = {
    "--pending": (int, 100_000, "pending reminders"),
    "--idle": (float, 60.0, "seconds to sample"),
}
BENCH = Bench("idle", __doc__, run, render, ok=lambda r: r["exit_code"] == 0, options=OPTIONS)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
