"""Every benchmark in one run on one machine: the tables, each bench's JSON, and all.json.

    python -m bench.run_all            # full sizes, about 4 minutes on 2 cores
    python -m bench.run_all --quick    # small sizes, about a minute: does everything still run?

Each bench writes its own JSON to --out-dir (ingest.json, latency.json, ...); all.json
holds every report, the time each took, and the targets with their verdicts. The
exit code is 1 when a functional check failed (an event lost or doubled, a prompt
missing); a missed performance target is reported, not an error.
"""

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import ha_delivery, idle, ingest, latency, reminder_scale
from bench._common import (
    fmt,
    load_average,
    machine,
    now,
    progress,
    quiet_logs,
    source_state,
    table,
    verdict,
    wall_clock,
    workspace,
    write_report,
)
from bench.harness.proc import py_spy

DEFAULT_OUT_DIR = Path("bench/results")
QUIET_LOAD = 1.0


@dataclass(frozen=True, slots=True)
class Bench:
    name: str
    run: Callable[[Path], dict[str, Any]]
    render: Callable[[dict[str, Any]], str]
    ok: Callable[[dict[str, Any]], bool]


def plan(*, quick: bool, out_dir: Path) -> list[Bench]:
    """The benches in the order they run, at full or quick sizes.

    A full run also profiles one daemon drain with py-spy, when it is installed.
    """
    profile = None if quick or py_spy() is None else out_dir / "ingest-drain.pyspy"
    return [
        Bench(
            "reminder_scale",
            lambda work: reminder_scale.BENCH.report(
                ["--sizes", "1000,10000", "--apscheduler-max", "10000"] if quick else [], work
            ),
            reminder_scale.render,
            lambda r: all(s["daemon"]["notified"] for s in r["results"]),
        ),
        Bench(
            "ingest",
            lambda work: ingest.BENCH.report(
                (["--events", "2000", "--repeat", "1"] if quick else [])
                + ([] if profile is None else ["--py-spy", str(profile)]),
                work,
            ),
            ingest.render,
            lambda r: bool(r["verified"]),
        ),
        Bench(
            "latency",
            lambda work: latency.BENCH.report(
                ["--sessions", "200", "--rounds", "2", "--warmup", "5"] if quick else [], work
            ),
            latency.render,
            lambda r: (
                r["soothe_per_session"] == {"min": 1, "max": 1} and not any(r["timeouts"].values())
            ),
        ),
        Bench(
            "idle",
            lambda work: idle.BENCH.report(
                ["--pending", "10000", "--idle", "5"] if quick else [], work
            ),
            idle.render,
            lambda r: r["exit_code"] == 0,
        ),
        Bench(
            "ha_delivery",
            lambda work: ha_delivery.BENCH.report(
                ["--burst", "20", "--sequential", "10"] if quick else [], work
            ),
            ha_delivery.render,
            lambda r: r["exit_code"] == 0,
        ),
    ]


def targets(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target with the measured figure and whether it was met."""
    rows = []
    if "ingest" in reports:
        r = reports["ingest"]
        for mode, ratio in r["ratios"].items():
            rows.append(
                {
                    "target": f"ingest {mode}: needlecare msgs/s >= 60% of bare paho",
                    "value": f"{ratio:.0%}",
                    "met": ratio >= r["target_ratio"],
                }
            )
    if "latency" in reports:
        r = reports["latency"]
        rows.append(
            {
                "target": "latency: median of the paired rounds' p99 ratios <= 1.5x bare (FULL)",
                "value": f"{r['p99_ratio_median_of_rounds']:.2f}x (rounds: "
                + ", ".join(f"{x['ratio']:.2f}" for x in r["p99_by_round_ms"])
                + f"; all samples {r['p99_ratio']:.2f}x)",
                "met": r["target_met"],
            }
        )
    if "idle" in reports:
        r = reports["idle"]
        rows.append(
            {
                "target": f"idle: RSS <= {r['target_rss_mib']:g} MiB with {r['pending']:,} pending",
                "value": f"{r['rss_mib']:.1f} MiB",
                "met": r["rss_mib"] <= r["target_rss_mib"],
            }
        )
        rows.append(
            {
                "target": "idle: no thread polls (wakes <= 10/min)",
                "value": ", ".join(
                    f"{t['name']} {t['wakes_per_min']:.1f}/min" for t in r["threads"]
                ),
                "met": not r["polling_threads"],
            }
        )
    return rows


def wait_for_quiet(limit_s: float) -> float:
    """Wait (up to ``limit_s``) until the 1-minute load average is below QUIET_LOAD."""
    started = now()
    while load_average() >= QUIET_LOAD and now() - started < limit_s:
        time.sleep(5)
    return load_average()


def render_targets(rows: list[dict[str, Any]]) -> str:
    return table(
        ("target", "measured", "verdict"),
        [[row["target"], row["value"], verdict(row["met"])] for row in rows],
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run_all",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument(
        "--only", action="append", default=None, help="run only this bench (repeatable)"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help=f"first wait up to this many seconds for a load average below {QUIET_LOAD:g}",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep every bench's files")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    benches = [
        b
        for b in plan(quick=args.quick, out_dir=args.out_dir)
        if args.only is None or b.name in args.only
    ]
    quiet_logs()
    if args.wait_quiet > 0:
        progress(f"load average {wait_for_quiet(args.wait_quiet):.2f}")
    started_at = wall_clock()
    source_before = source_state()
    reports: dict[str, dict[str, Any]] = {}
    durations: dict[str, float] = {}
    with workspace(args.workdir, "bench-all-") as work:
        for bench in benches:
            progress(f"== {bench.name}")
            started = now()
            reports[bench.name] = bench.run(work / bench.name)
            durations[bench.name] = now() - started
            write_report(reports[bench.name], args.out_dir / f"{bench.name}.json")
            print(f"\n== {bench.name} ({durations[bench.name]:.0f} s)\n")
            print(bench.render(reports[bench.name]), flush=True)
        machine_info = machine(work, source_before=source_before)
    checks = {b.name: b.ok(reports[b.name]) for b in benches}
    rows = targets(reports)
    summary = {
        "bench": "all",
        "quick": args.quick,
        "started_at": started_at.isoformat(),
        "finished_at": wall_clock().isoformat(),
        "machine": machine_info,
        "durations_s": durations,
        "checks": checks,
        "targets": rows,
        "reports": reports,
    }
    out = args.out_dir / "all.json"
    write_report(summary, out)
    total = sum(durations.values())
    print(f"\n== targets (whole run {fmt(total, 0)} s)\n")
    print(render_targets(rows))
    print(f"\nfunctional checks: {checks}\nwritten to {out}")
    if machine_info["source_changed_during_run"]:
        print("WARNING: service/ or integrations/ changed during the run: figures mix versions")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
