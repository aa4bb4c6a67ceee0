"""The web app: API latency on a store with 10,000 sessions, and the RSS it costs.

N closed sessions and 6 N pending reminders; the daemon with web.enabled false, then
true: its settled RSS, then --requests GETs per route over one keep-alive connection.
Targets: p99 <= 50 ms per route, <= 25 MiB more RSS with the web app.
"""

import http.client
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.harness.daemon import running_daemon
from bench.harness.mqtt import free_port
from bench.harness.proc import rss_mib, wait_idle
from bench.harness.report import Bench, fmt, now, percentiles, progress, table, verdict, wall_clock
from bench.reminder_scale import seed as seed_reminders

ROUTES = ("/api/v1/reminders", "/api/v1/sessions")
TARGET_P99_MS, TARGET_EXTRA_MIB = 50.0, 25.0
TOKEN = "bench-token"  # noqa: S105 - a throwaway token for a local run
PROFILES = {"alice": {"timezone": "Europe/Berlin"}, "bob": {"timezone": "America/New_York"}}


def seed(db: Path, sessions: int) -> None:
    from needlecare.domain.sessions import Session, SessionStatus  # noqa: PLC0415
    from needlecare_integrations.store import SqliteStore  # noqa: PLC0415

    start = wall_clock()
    seed_reminders(db, sessions * 6, start)
    store = SqliteStore.open(db, now=start)
    try:
        with store.transaction():
            for i in range(sessions):
                ended = start - timedelta(hours=3 * (i + 1))
                store.save_session(
                    Session(id=f"ses_bench{i:07d}", profile=("alice", "bob")[i % 2],
                            device_id=None, setting="home", status=SessionStatus.COMPLETED,
                            started_at=ended - timedelta(minutes=20), ended_at=ended,
                            last_seen_at=ended, source="manual")
                )  # fmt: skip
    finally:
        store.close()


def latencies(port: int, route: str, count: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    seconds = []
    try:
        for _ in range(count):
            started = now()
            connection.request("GET", route, headers={"Authorization": f"Bearer {TOKEN}"})
            response = connection.getresponse()
            response.read()
            seconds.append(now() - started)
            if response.status != 200:
                raise RuntimeError(f"{route}: HTTP {response.status}")
    finally:
        connection.close()
    return seconds


def run(args: Any, work: Path) -> dict[str, Any]:
    progress(f"web: seeding {args.sessions:,} sessions and {args.sessions * 6:,} reminders")
    seed(work / "needlecare.db", args.sessions)
    result: dict[str, Any] = {"sessions": args.sessions, "requests": args.requests}
    port = free_port()
    for on in (False, True):
        web = {"enabled": on, "port": port, "token": TOKEN}
        with running_daemon(work, start=False, profiles=PROFILES, web=web) as daemon:
            daemon.start().wait_for("mqtt_connected")
            wait_idle(daemon.pid)
            result[f"rss_web_{'on' if on else 'off'}_mib"] = rss_mib(daemon.pid)
            for route in ROUTES if on else ():
                progress(f"web: {args.requests} x GET {route}")
                latencies(port, route, 10)  # warm-up: first queries, first imports
                result[route] = percentiles(latencies(port, route, args.requests))
            if on:
                result["rss_web_on_after_mib"] = rss_mib(daemon.pid)
    extra = max(result["rss_web_on_mib"], result["rss_web_on_after_mib"])
    extra -= result["rss_web_off_mib"]
    p99_ok = all(result[route]["p99"] <= TARGET_P99_MS for route in ROUTES)
    return {**result, "extra_rss_mib": extra, "target_met": p99_ok and extra <= TARGET_EXTRA_MIB}


def render(report: dict[str, Any]) -> str:
    percents = ("p50", "p90", "p99", "max")
    rows = [[route, *(fmt(report[route][k], 1) for k in percents)] for route in ROUTES]
    p99_ok = all(report[route]["p99"] <= TARGET_P99_MS for route in ROUTES)
    return "\n".join([
        f"Web API: {report['sessions']:,} sessions, {report['requests']} GETs per route (ms)",
        table(("route", "p50", "p90", "p99", "max"), rows),
        "",
        f"RSS web off {report['rss_web_off_mib']:.1f} MiB, on {report['rss_web_on_mib']:.1f}"
        f" MiB, on after the requests {report['rss_web_on_after_mib']:.1f} MiB:"
        f" +{report['extra_rss_mib']:.1f} MiB",
        f"p99 <= {TARGET_P99_MS:g} ms: {verdict(p99_ok)};"
        f" extra RSS <= {TARGET_EXTRA_MIB:g} MiB:"
        f" {verdict(report['extra_rss_mib'] <= TARGET_EXTRA_MIB)}",
    ])  # fmt: skip


OPTIONS = {"--sessions": (int, 10_000, "closed sessions in the store"),
           "--requests": (int, 300, "GETs per route")}  # fmt: skip
BENCH = Bench("web", __doc__, run, render, ok=lambda r: r["target_met"], options=OPTIONS)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
