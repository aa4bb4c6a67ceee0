"""Every benchmark in one run on one machine: the tables, each bench's JSON, and all.json.

    python -m bench.run_all            # full sizes, about 4 minutes on 2 cores
    python -m bench.run_all --quick    # small sizes, about a minute: does everything still run?

Each bench writes its own JSON to --out-dir (ingest.json, latency.json, ...); all.json
holds every report, the time each took, and the targets with their verdicts. The
exit code is 1 when a functional check failed (an event lost or doubled, a prompt
missing); a missed performance target is reported, not an error. A full run also
profiles one daemon drain with py-spy, when it is installed.
"""

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import ha_delivery, idle, ingest, latency, reminder_scale
from bench.harness.proc import py_spy
from bench.harness.report import (
    Options,
    columns,
    fmt,
    load_average,
    machine,
    now,
    parser,
    progress,
    source_state,
    verdict,
    wall_clock,
    workspace,
    write_report,
)

BENCHES = [reminder_scale.BENCH, ingest.BENCH, latency.BENCH, idle.BENCH, ha_delivery.BENCH]
QUICK = {
    "reminder_scale": ["--sizes", "1000,10000", "--apscheduler-max", "10000"],
    "ingest": ["--events", "2000", "--repeat", "1"],
    "latency": ["--sessions", "200", "--rounds", "2", "--warmup", "5"],
    "idle": ["--pending", "10000", "--idle", "5"],
    "ha_delivery": ["--burst", "20", "--sequential", "10"],
}
QUIET_LOAD = 1.0


def targets(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target with the measured figure and whether it was met."""
    rows = []
    if r := reports.get("ingest"):
        for mode, ratio in r["ratios"].items():
            target = f"ingest {mode}: needlecare msgs/s >= 60% of bare paho"
            rows.append(
                {"target": target, "value": f"{ratio:.0%}", "met": ratio >= r["target_ratio"]}
            )
    if r := reports.get("latency"):
        rounds = ", ".join(f"{x['ratio']:.2f}" for x in r["p99_by_round_ms"])
        median = f"{r['p99_ratio_median_of_rounds']:.2f}x"
        rows.append(
            {
                "target": "latency: median of the paired rounds' p99 ratios <= 1.5x bare (FULL)",
                "value": f"{median} (rounds: {rounds}; all samples {r['p99_ratio']:.2f}x)",
                "met": r["target_met"],
            }
        )
    if r := reports.get("idle"):
        rss = f"idle: RSS <= {r['target_rss_mib']:g} MiB with {r['pending']:,} pending"
        met = r["rss_mib"] <= r["target_rss_mib"]
        rows.append({"target": rss, "value": f"{r['rss_mib']:.1f} MiB", "met": met})
        wakes = ", ".join(f"{t['name']} {t['wakes_per_min']:.1f}/min" for t in r["threads"])
        polls = "idle: no thread polls (wakes <= 10/min)"
        rows.append({"target": polls, "value": wakes, "met": not r["polling_threads"]})
    return rows


OPTIONS: Options = {
    "--quick": (bool, False, "small sizes"),
    "--out-dir": (Path, Path("bench/results"), "each bench's JSON and all.json"),
    "--only": ("append", None, "only this bench (again)"),
    "--wait-quiet": (
        float,
        0.0,
        f"first wait up to this many s for a load average < {QUIET_LOAD:g}",
    ),
    "--workdir": (Path, None, "keep every bench's files"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser("run_all", __doc__, OPTIONS).parse_args(argv)
    benches = [b for b in BENCHES if args.only is None or b.name in args.only]
    started = now()
    while (
        args.wait_quiet > 0 and load_average() >= QUIET_LOAD and now() - started < args.wait_quiet
    ):
        time.sleep(5)
    progress(f"load average {load_average():.2f}")
    started_at, source_before = wall_clock(), source_state()
    reports: dict[str, dict[str, Any]] = {}
    durations: dict[str, float] = {}
    with workspace(args.workdir, "bench-all-") as work:
        for bench in benches:
            progress(f"== {bench.name}")
            argv_of = QUICK[bench.name] if args.quick else []
            if bench.name == "ingest" and not args.quick and py_spy() is not None:
                argv_of = ["--py-spy", str(args.out_dir / "ingest-drain.pyspy")]
            started = now()
            reports[bench.name] = bench.report(argv_of, work / bench.name)
            durations[bench.name] = now() - started
            write_report(reports[bench.name], args.out_dir / f"{bench.name}.json")
            print(f"\n== {bench.name} ({durations[bench.name]:.0f} s)\n")
            print(bench.render(reports[bench.name]), flush=True)
        found = machine(work, source_before)
    checks = {bench.name: bench.ok(reports[bench.name]) for bench in benches}
    rows = targets(reports)
    whole = {"bench": "all", "quick": args.quick, "started_at": started_at.isoformat()}
    whole |= {"finished_at": wall_clock().isoformat(), "machine": found, "durations_s": durations}
    whole |= {"checks": checks, "targets": rows, "reports": reports}
    write_report(whole, args.out_dir / "all.json")
    print(f"\n== targets (whole run {fmt(sum(durations.values()), 0)} s)\n")
    verdicts = {"target": lambda row: row["target"], "measured": lambda row: row["value"]}
    print(columns(verdicts | {"verdict": lambda row: verdict(row["met"])}, rows))
    print(f"\nfunctional checks: {checks}\nwritten to {args.out_dir / 'all.json'}")
    if found["source_changed_during_run"]:
        print("WARNING: service/ or integrations/ changed during the run: figures mix versions")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
