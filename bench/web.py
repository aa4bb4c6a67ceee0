"""The web app: API latency on a store with 10,000 sessions, and the RSS it costs.

N closed sessions and 6 N pending reminders; the daemon with web.enabled false, then
true: its settled RSS, then --requests GETs per route over one keep-alive connection.
Targets: p99 <= 50 ms per route, <= 25 MiB more RSS with the web app.
"""

import http.client
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.harness.daemon import running_daemon, seed_reminders
from bench.harness.mqtt import free_port
from bench.harness.proc import rss_mib, wait_idle
from bench.harness.report import Bench, now, pct_table, percentiles, progress, verdict, wall_clock

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
                    Session(
                        id=f"ses_bench{i:07d}",
                        profile=("alice", "bob")[i % 2],
                        device_id=None,
                        setting="home",
                        status=SessionStatus.COMPLETED,
                        last_seen_at=ended,
                        source="manual",
                        started_at=ended - timedelta(minutes=20),
                        ended_at=ended,
                    )
                )
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


TEXT = """\
Web API: {sessions:,} sessions, {requests} GETs per route (ms)
{routes}

RSS web off {rss_web_off_mib:.1f} MiB, on {rss_web_on_mib:.1f} MiB, \
on after the requests {rss_web_on_after_mib:.1f} MiB: +{extra_rss_mib:.1f} MiB
p99 <= {p99_target:g} ms: {p99_met}; extra RSS <= {rss_target:g} MiB: {rss_met}"""


def render(r: dict[str, Any]) -> str:
    routes = pct_table([(route, r[route]) for route in ROUTES], first="route", counts=False)
    p99_ok = all(r[route]["p99"] <= TARGET_P99_MS for route in ROUTES)
    rss_met = verdict(r["extra_rss_mib"] <= TARGET_EXTRA_MIB)
    met = {"p99_met": verdict(p99_ok), "rss_met": rss_met}
    return TEXT.format_map(
        r | met | {"routes": routes, "p99_target": TARGET_P99_MS, "rss_target": TARGET_EXTRA_MIB}
    )


OPTIONS = {
    "--sessions": (int, 10_000, "closed sessions in the store"),
    "--requests": (int, 300, "GETs per route"),
}
BENCH = Bench("web", __doc__, run, render, ok=lambda r: r["target_met"], options=OPTIONS)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
