"""Bytes written per heartbeat and per event, and the store's growth, from outside.

``write_bytes`` of the daemon's process (``/proc/PID/io``) and the store's file sizes
around each window: 2 devices beating every --beat-every s, held --hold s (the defaults
keep production's 120 s for beats a minute apart, at a tenth of the time) and each
committed alone; --events mirror events (skin checks) and the ingest bench's mix
queued, then drained from the daemon's spawn; --live events at --rate. Targets (issue
14): <= 4 KiB per heartbeat, <= 4x the payload per event, <= 300 B growth per event.
"""

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness.daemon import ONE_PROFILE, Daemon, devices, file_sizes, running_daemon
from bench.harness.daemon import wait_for_store as store_of
from bench.harness.mqtt import Message, Peer, pad_json
from bench.harness.proc import wait_idle, write_bytes
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

HEARTBEAT_TARGET, EVENT_FACTOR_TARGET, GROWTH_TARGET = 4096, 4.0, 300
MIRROR = "needlecare/mirror/hallway/event"
PENS = ("pen1", "pen2")


def beats(count: int, tag: str) -> list[list[Message]]:
    """``count`` rounds of a heartbeat from each of the 2 devices."""
    rounds = []
    for n in range(count):
        body = {"type": "heartbeat", "battery_pct": 90 - n % 50, "cartridge_uses": n}
        rounds.append([device_event(d, {"event_id": f"hb-{tag}-{d}-{n}", **body}) for d in PENS])
    return rounds


def device_event(device: str, body: dict[str, Any]) -> Message:
    return f"needlecare/device/{device}/event", json.dumps(body).encode()


def skin_checks(count: int, tag: str) -> list[Message]:
    body = lambda n: {"event_id": f"ev-{tag}-{n}", "type": "skin_check", "profile": "alice"}  # noqa: E731
    return [(MIRROR, pad_json({**body(n), "redness": n % 100}, 200)) for n in range(count)]


def window(
    daemon: Daemon, name: str, send: Callable[[], int], messages: int, *, spawn: bool = False
) -> dict[str, Any]:
    """Write counters and file sizes around ``send()``, the daemon settled at both ends; with
    ``spawn`` the stopped daemon starts on a queued backlog, its whole process the window."""
    r: dict[str, Any] = {"scenario": name, "messages": messages, "exit_code": None}
    if spawn:
        r["files_before"] = file_sizes(daemon.db)
        daemon.start()
    else:
        wait_idle(daemon.pid, quiet_s=1.0)
        r["files_before"] = file_sizes(daemon.db)
    before_io, started = (0, daemon.spawned_at) if spawn else (write_bytes(daemon.pid), now())
    r["payload_bytes"] = send()
    wait_idle(daemon.pid, quiet_s=1.0)
    r["seconds"], r["write_bytes"] = now() - started, write_bytes(daemon.pid) - before_io
    r["write_bytes_per_message"] = r["write_bytes"] / messages
    r["files_after"] = file_sizes(daemon.db)
    r["db_growth_bytes"] = r["files_after"]["db"] - r["files_before"]["db"]
    progress(f"{name}: {r['write_bytes_per_message']:.0f} B written per message")
    return r | {"load_average": load_average()}


def live(
    work: Path, name: str, hold: float, rounds: list[list[Message]], *, pause: float, old: bool
) -> dict[str, Any]:
    """``rounds`` of messages sent live, ``pause`` apart, each acknowledged before the next."""
    retention = {} if old else {"retention": {"heartbeat_hold_s": hold}}
    owned = {"devices": {pen: {"owner": "alice"} for pen in PENS}}
    sections = {"profiles": ONE_PROFILE, "mirrors": {"hallway": {}}, **owned, **retention}
    with running_daemon(work / name, **sections) as daemon, Peer(daemon.broker, name) as peer:
        peer.send(beats(1, f"{name}-first")[0])  # the day's first beat: not part of the window

        def send() -> int:
            size = 0
            for messages in rounds:
                size += peer.send(messages, window=1)  # one at a time, each acked
                time.sleep(pause)
            return size

        result = window(daemon, name, send, sum(map(len, rounds))) | {"hold_s": hold}
        result["exit_code"] = daemon.stop()
    return result


def drain(
    work: Path, name: str, messages: list[Message], *, count: int, done: str, done_at: int
) -> dict[str, Any]:
    """Queue ``messages`` while the daemon is down; measure its whole next process."""
    sections = devices(count) | {"mirrors": {"hallway": {}}}
    sections["profiles"] |= ONE_PROFILE
    sections["mqtt"] = {"client_id": f"needlecare-bench-{name}"}
    with running_daemon(work / name, **sections) as daemon:
        daemon.restart_clean()
        with Peer(daemon.broker, f"bench-{name}", max_inflight=100) as peer:
            payload = peer.send(messages)

        def send() -> int:
            with store_of(daemon.db) as reader:
                reader.at_least(done, done_at, timeout=300)
            return payload

        result = window(daemon, name, send, len(messages), spawn=True) | {"hold_s": None}
        result["exit_code"] = daemon.stop()
    progress(f"{name}: {result['write_bytes'] / payload:.2f}x the payload written")
    return result


def run(args: Any, work: Path) -> dict[str, Any]:
    from bench.ingest import build_events  # noqa: PLC0415 - the ingest bench's workload

    mix, sessions = build_events(args.mix, devices=20, block=100, tag="mix")
    rounds = beats(args.beats, f"{wall_clock():%H%M%S}")  # ids as long as before
    events = [[m] for m in skin_checks(args.live, "live")]
    completed = "SELECT count(*) FROM sessions WHERE status = 'completed'"
    checks = "SELECT count(*) FROM skin_checks"
    beating = {"pause": args.beat_every, "old": args.old_config}
    results = [
        live(work, "heartbeats-held", args.hold, rounds, **beating),
        live(work, "heartbeats-each", 0.0, rounds, **beating),
        drain(
            work,
            "events-drain",
            skin_checks(args.events, "d"),
            count=1,
            done=checks,
            done_at=args.events,
        ),
        drain(work, "mix-drain", mix, count=20, done=completed, done_at=sessions),
        live(work, "events-live", 0.0, events, pause=1 / args.rate, old=args.old_config),
    ]
    held, each, evs, mixed, _ = results
    figures = {
        "heartbeat_bytes": (held["write_bytes_per_message"], HEARTBEAT_TARGET),
        "event_write_factor": (evs["write_bytes"] / evs["payload_bytes"], EVENT_FACTOR_TARGET),
        "event_growth_bytes": (evs["db_growth_bytes"] / evs["messages"], GROWTH_TARGET),
        "mix_write_factor": (mixed["write_bytes"] / mixed["payload_bytes"], EVENT_FACTOR_TARGET),
        "mix_growth_bytes": (mixed["db_growth_bytes"] / mixed["messages"], GROWTH_TARGET),
    }
    targets = {k: {"target": t, "measured": m, "met": m <= t} for k, (m, t) in figures.items()}
    hold_off = each["write_bytes_per_message"]
    return {"results": results, "targets": targets, "heartbeat_hold_off_bytes": hold_off}


SCENARIOS = {
    "scenario": lambda r: r["scenario"],
    "hold s": lambda r: "-" if r["hold_s"] is None else fmt(r["hold_s"]),
    "msgs": lambda r: r["messages"],
    "KiB written": lambda r: fmt(r["write_bytes"] / 1024),
    "B/msg": lambda r: fmt(r["write_bytes_per_message"], 0),
    "x payload": lambda r: fmt(r["write_bytes"] / r["payload_bytes"], 2),
    "db B/msg": lambda r: fmt(r["db_growth_bytes"] / r["messages"], 0),
    "load": lambda r: fmt(r["load_average"], 2),
}


def render(report: dict[str, Any]) -> str:
    lines = [columns(SCENARIOS, report["results"]), ""]
    for name, t in report["targets"].items():
        lines.append(f"{name}: {fmt(t['measured'], 2)} (target {t['target']}) {verdict(t['met'])}")
    return "\n".join(lines)


OPTIONS = {
    "--beats": (int, 30, "heartbeats per device"),
    "--beat-every": (float, 6.0, "seconds between beats"),
    "--hold": (float, 12.0, "retention.heartbeat_hold_s (scaled as --beat-every)"),
    "--events": (int, 20_000, "mirror events drained"),
    "--mix": (int, 20_000, "ingest-mix events drained"),
    "--live": (int, 500, "mirror events sent live"),
    "--rate": (float, 100.0, "live events per second"),
    "--old-config": (bool, False, "no retention: section, for an older checkout (PYTHONPATH)"),
}
BENCH = Bench(
    "writes",
    __doc__,
    run,
    render,
    lambda r: all(x["exit_code"] == 0 for x in r["results"]),
    OPTIONS,
)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
