"""The web app: API latency on a store with 10,000 sessions, and the RSS it costs.

The store gets N closed sessions (two profiles, one every few hours back from
now) and 6 N pending reminders (as ``bench.reminder_scale`` seeds them). The
daemon runs against its own Mosquitto twice: with web.enabled false, then true.
Each run settles; its RSS (VmRSS) is read. With the web app on, the bench sends
--requests sequential GETs to /api/v1/reminders and /api/v1/sessions (default
limits) over one keep-alive connection and reads the RSS again afterwards.
Targets: p99 <= 50 ms per route, <= 25 MiB more RSS with the web app.

    python -m bench.web [--sessions 10000] [--requests 300]
"""

import http.client
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench._common import (
    Daemon,
    bench_parser,
    daemon_config,
    finish,
    fmt,
    free_port,
    machine,
    now,
    percentiles,
    progress,
    quiet_logs,
    rss_mib,
    running_broker,
    table,
    verdict,
    wait_idle,
    wall_clock,
    workspace,
)
from bench.reminder_scale import seed as seed_reminders
from needlecare.domain.sessions import Session, SessionStatus
from needlecare_integrations.store import SqliteStore

DEFAULT_OUT = Path("bench/results/web.json")
ROUTES = ("/api/v1/reminders", "/api/v1/sessions")
TARGET_P99_MS = 50.0
TARGET_EXTRA_MIB = 25.0
TOKEN = "bench-token"  # noqa: S105 - a throwaway token for a local run
PROFILES = {"alice": {"timezone": "Europe/Berlin"}, "bob": {"timezone": "America/New_York"}}


def seed(db: Path, sessions: int) -> None:
    start = wall_clock()
    seed_reminders(db, sessions * 6, start)
    store = SqliteStore.open(db, now=start)
    try:
        with store.transaction():
            for i in range(sessions):
                ended = start - timedelta(hours=3 * (i + 1))
                store.save_session(
                    Session(
                        id=f"ses_bench{i:07d}",
                        profile=("alice", "bob")[i % 2],
                        device_id=None,
                        setting="home",
                        status=SessionStatus.COMPLETED,
                        started_at=ended - timedelta(minutes=20),
                        ended_at=ended,
                        last_seen_at=ended,
                        source="manual",
                    )
                )
    finally:
        store.close()


def latencies(port: int, route: str, count: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    seconds = []
    try:
        for _ in range(count):
            started = now()
            connection.request("GET", route, headers=headers)
            response = connection.getresponse()
            response.read()
            seconds.append(now() - started)
            if response.status != 200:
                raise RuntimeError(f"{route}: HTTP {response.status}")
    finally:
        connection.close()
    return seconds


def settled_rss(daemon: Daemon) -> float:
    daemon.wait_for("mqtt_connected")
    wait_idle(daemon.pid)
    return rss_mib(daemon.pid)


def measure(work: Path, sessions: int, requests: int) -> dict[str, Any]:
    quiet_logs()
    db = work / "needlecare.db"
    progress(f"web: seeding {sessions:,} sessions and {sessions * 6:,} reminders")
    seed(db, sessions)
    result: dict[str, Any] = {}
    with running_broker(work / "broker") as broker:
        port = free_port()
        for enabled in (False, True):
            web = {"enabled": enabled, "port": port, "token": TOKEN}
            config = daemon_config(broker, db, profiles=PROFILES, web=web)
            daemon = Daemon(work / f"web-{'on' if enabled else 'off'}", config).start()
            try:
                result[f"rss_web_{'on' if enabled else 'off'}_mib"] = settled_rss(daemon)
                if enabled:
                    for route in ROUTES:
                        progress(f"web: {requests} x GET {route}")
                        latencies(port, route, 10)  # warm-up: first queries, first imports
                        result[route] = percentiles(latencies(port, route, requests))
                    result["rss_web_on_after_mib"] = rss_mib(daemon.pid)
            finally:
                daemon.stop()
    return result


def run(sessions: int, requests: int, workdir: Path | None) -> dict[str, Any]:
    started_at = wall_clock()
    with workspace(workdir, "bench-web-") as work:
        result = measure(work, sessions, requests)
        machine_info = machine(work)
    extra = max(result["rss_web_on_mib"], result["rss_web_on_after_mib"])
    extra -= result["rss_web_off_mib"]
    p99_ok = all(result[route]["p99"] <= TARGET_P99_MS for route in ROUTES)
    return {
        "bench": "web",
        "started_at": started_at.isoformat(),
        "machine": machine_info,
        "sessions": sessions,
        "requests": requests,
        **result,
        "extra_rss_mib": extra,
        "target_met": p99_ok and extra <= TARGET_EXTRA_MIB,
    }


def render(report: dict[str, Any]) -> str:
    rows = [
        [route, *(fmt(report[route][k], 1) for k in ("p50", "p90", "p99", "max"))]
        for route in ROUTES
    ]
    p99_ok = all(report[route]["p99"] <= TARGET_P99_MS for route in ROUTES)
    return "\n".join(
        [
            f"Web API: {report['sessions']:,} sessions, {report['requests']} GETs per route (ms)",
            table(("route", "p50", "p90", "p99", "max"), rows),
            "",
            f"RSS web off {report['rss_web_off_mib']:.1f} MiB, on {report['rss_web_on_mib']:.1f}"
            f" MiB, on after the requests {report['rss_web_on_after_mib']:.1f} MiB:"
            f" +{report['extra_rss_mib']:.1f} MiB",
            f"p99 <= {TARGET_P99_MS:g} ms: {verdict(p99_ok)};"
            f" extra RSS <= {TARGET_EXTRA_MIB:g} MiB:"
            f" {verdict(report['extra_rss_mib'] <= TARGET_EXTRA_MIB)}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("bench.web", __doc__, out=DEFAULT_OUT, workdir_help="keep the store")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    report = run(args.sessions, args.requests, args.workdir)
    finish(report, args.out, render)
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
