"""Bytes written: per heartbeat, per ingested event, and the store's growth, from outside.

The daemon runs as a process against its own Mosquitto. What it writes is read from
``/proc/PID/io`` (``write_bytes``: what the process made the kernel send to storage,
counted when a page turns dirty, so fsync'd rewrites of the same page count each
time) and from the sizes of the store's three files, before and after each window.

- **heartbeats**: 2 devices beat every ``--beat-every`` seconds for ``--beats`` beats
  each; the daemon holds beats for ``--hold`` seconds (production: 120 s for beats a
  minute apart, so the defaults, 12 s and 6 s, keep that ratio at a tenth of the time),
  and once more with the hold off (each beat committed alone).
- **events-drain**: ``--events`` mirror events of 200 bytes (``skin_check``, each a row
  in ``events`` and one in ``skin_checks``) queued while the daemon is down, then
  drained: the window runs from the daemon's spawn (its whole process) to the end.
- **mix-drain**: the ingest bench's workload (blocks of 100 device events: a
  session_started, 98 heartbeats, a session_ended), drained the same way: the
  workload the issue's figures (16x, 698 B per event) were measured on.
- **events-live**: ``--live`` mirror events at ``--rate`` per second, each its own turn.

Targets (issue 14): <= 4 KiB written per heartbeat, <= 4x the payload written per
event, store growth <= 300 B per event.
"""

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import (
    BenchError,
    Daemon,
    Peer,
    bench_parser,
    daemon_config,
    finish,
    fmt,
    load_average,
    machine,
    pad_json,
    progress,
    running_broker,
    source_state,
    table,
    verdict,
    wait_for_store,
    wait_idle,
    wait_online,
    wall_clock,
    workspace,
    write_bytes,
)

OUT = Path("bench/results/writes.json")
EVENT_BYTES = 200
HEARTBEAT_TARGET = 4096
# --old-config: a checkout from before the retention section (PYTHONPATH pointing at it).
OLD_CONFIG = False
EVENT_FACTOR_TARGET = 4.0
GROWTH_TARGET = 300


def file_sizes(db: Path) -> dict[str, int]:
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        path = db.with_name(db.name + suffix)
        sizes[suffix or "db"] = path.stat().st_size if path.exists() else 0
    return sizes


def _window(daemon: Daemon, publish: Any) -> dict[str, Any]:
    """Write counters and file sizes around ``publish()``, the daemon settled at both ends."""
    wait_idle(daemon.pid, quiet_s=1.0)
    before_io, before_files = write_bytes(daemon.pid), file_sizes(daemon.db)
    started = time.monotonic()
    count, payload_bytes = publish()
    wait_idle(daemon.pid, quiet_s=1.0)
    after_io, after_files = write_bytes(daemon.pid), file_sizes(daemon.db)
    written = after_io - before_io
    return {
        "messages": count,
        "payload_bytes": payload_bytes,
        "seconds": time.monotonic() - started,
        "write_bytes": written,
        "write_bytes_per_message": written / count,
        "db_growth_bytes": after_files["db"] - before_files["db"],
        "files_before": before_files,
        "files_after": after_files,
        "load_average": load_average(),
    }


def heartbeats(peer: Peer, beats: int, every: float) -> tuple[int, int]:
    sent = 0
    size = 0
    stamp = wall_clock()
    for n in range(beats):
        for device in ("pen1", "pen2"):
            body = {"event_id": f"hb-{device}-{stamp:%H%M%S}-{n}", "type": "heartbeat"}
            body |= {"battery_pct": 90 - n % 50, "cartridge_uses": n}
            payload = json.dumps(body).encode()
            peer.acked_at(peer.publish(f"needlecare/device/{device}/event", payload))
            sent += 1
            size += len(payload)
        time.sleep(every)
    return sent, size


def skin_checks(count: int, tag: str) -> list[tuple[str, bytes]]:
    out = []
    for n in range(count):
        body = {"event_id": f"ev-{tag}-{n}", "type": "skin_check", "profile": "alice"}
        out.append(("needlecare/mirror/hallway/event", pad_json({**body, "redness": n % 100}, 200)))
    return out


def drain(
    workdir: Path, name: str, messages: list[tuple[str, bytes]], *, devices: int, done_sql: str,
    done_at: int,
) -> dict[str, Any]:  # fmt: skip
    """Queue ``messages`` while the daemon is down; measure its whole next process."""
    run_dir = workdir / name
    with running_broker(run_dir / "broker") as broker:
        profiles = {f"p{d:02d}": {"timezone": "Europe/Berlin"} for d in range(devices)}
        config = daemon_config(
            broker,
            run_dir / "needlecare.db",
            mqtt={"client_id": f"needlecare-bench-{name}"},
            profiles={"alice": {"timezone": "Europe/Berlin"}, **profiles},
            devices={f"pen{d:02d}": {"owner": f"p{d:02d}"} for d in range(devices)},
            mirrors={"hallway": {}},
        )
        daemon = Daemon(run_dir, config).start()
        try:
            wait_online(broker)
            wait_for_store(daemon.db).__exit__()
            if daemon.stop() != 0:
                raise BenchError("the daemon did not stop cleanly")
            with Peer(broker.host, broker.port, client_id=f"bench-{name}", max_inflight=100) as p:
                mids = [p.publish(topic, payload) for topic, payload in messages]
                for mid in mids:
                    p.acked_at(mid, timeout=120)
            before_files = file_sizes(daemon.db)
            daemon.start()
            with wait_for_store(daemon.db) as reader:
                reader.wait_until(done_sql, lambda n: n is not None and n >= done_at, timeout=300)
            wait_idle(daemon.pid, quiet_s=1.0)
            written = write_bytes(daemon.pid)
            seconds = time.monotonic() - daemon.spawned_at
            after_files = file_sizes(daemon.db)
        finally:
            code = daemon.stop()
    payload = sum(len(body) for _, body in messages)
    result = {
        "scenario": name,
        "hold_s": None,
        "exit_code": code,
        "messages": len(messages),
        "payload_bytes": payload,
        "seconds": seconds,
        "write_bytes": written,
        "write_bytes_per_message": written / len(messages),
        "db_growth_bytes": after_files["db"] - before_files["db"],
        "files_before": before_files,
        "files_after": after_files,
        "load_average": load_average(),
    }
    progress(f"{name}: {written / payload:.2f}x the payload written")
    return result


def events(peer: Peer, count: int, rate: float) -> tuple[int, int]:
    size = 0
    stamp = wall_clock()
    for n in range(count):
        body = {"event_id": f"ev-{stamp:%H%M%S}-{n}", "type": "skin_check", "profile": "alice"}
        payload = pad_json({**body, "redness": n % 100}, EVENT_BYTES)
        peer.acked_at(peer.publish("needlecare/mirror/hallway/event", payload))
        size += len(payload)
        time.sleep(1 / rate)
    return count, size


def scenario(workdir: Path, name: str, hold: float, publish: Any) -> dict[str, Any]:
    run_dir = workdir / name
    with running_broker(run_dir / "broker") as broker:
        config = daemon_config(
            broker,
            run_dir / "needlecare.db",
            profiles={"alice": {"timezone": "Europe/Berlin"}},
            devices={"pen1": {"owner": "alice"}, "pen2": {"owner": "alice"}},
            mirrors={"hallway": {}},
            **({} if OLD_CONFIG else {"retention": {"heartbeat_hold_s": hold}}),
        )
        daemon = Daemon(run_dir, config).start()
        try:
            wait_online(broker)
            wait_for_store(daemon.db).__exit__()
            with Peer(broker.host, broker.port, client_id=f"bench-writes-{name}") as peer:
                # A first beat per device: the day's event row is not part of the window.
                heartbeats(peer, 1, 0)
                result = _window(daemon, lambda: publish(peer))
        finally:
            code = daemon.stop()
    progress(f"{name}: {result['write_bytes_per_message']:.0f} B written per message")
    return {"scenario": name, "hold_s": hold, "exit_code": code, **result}


def run(args: Any) -> dict[str, Any]:
    before = source_state()
    with workspace(args.workdir, "needlecare-bench-writes-") as workdir:
        beats = lambda p: heartbeats(p, args.beats, args.beat_every)  # noqa: E731
        from bench.ingest import build_events  # noqa: PLC0415 - the ingest bench's workload

        mix, sessions = build_events(args.mix, devices=20, block=100, tag="mix")
        results = [
            scenario(workdir, "heartbeats-held", args.hold, beats),
            scenario(workdir, "heartbeats-each", 0.0, beats),
            drain(
                workdir, "events-drain", skin_checks(args.events, "d"), devices=1,
                done_sql="SELECT count(*) FROM skin_checks", done_at=args.events,
            ),
            drain(
                workdir, "mix-drain", mix, devices=20,
                done_sql="SELECT count(*) FROM sessions WHERE status = 'completed'",
                done_at=sessions,
            ),
            scenario(workdir, "events-live", 0.0, lambda p: events(p, args.live, args.rate)),
        ]  # fmt: skip
        found = machine(workdir, source_before=before)
    held, each, evs, mixed, _ = results
    return {
        "bench": "writes",
        "machine": found,
        "results": results,
        "targets": {
            "heartbeat_bytes": {
                "target": HEARTBEAT_TARGET,
                "measured": held["write_bytes_per_message"],
                "met": held["write_bytes_per_message"] <= HEARTBEAT_TARGET,
            },
            "event_write_factor": {
                "target": EVENT_FACTOR_TARGET,
                "measured": evs["write_bytes"] / evs["payload_bytes"],
                "met": evs["write_bytes"] / evs["payload_bytes"] <= EVENT_FACTOR_TARGET,
            },
            "event_growth_bytes": {
                "target": GROWTH_TARGET,
                "measured": evs["db_growth_bytes"] / evs["messages"],
                "met": evs["db_growth_bytes"] / evs["messages"] <= GROWTH_TARGET,
            },
            "mix_write_factor": {
                "target": EVENT_FACTOR_TARGET,
                "measured": mixed["write_bytes"] / mixed["payload_bytes"],
                "met": mixed["write_bytes"] / mixed["payload_bytes"] <= EVENT_FACTOR_TARGET,
            },
            "mix_growth_bytes": {
                "target": GROWTH_TARGET,
                "measured": mixed["db_growth_bytes"] / mixed["messages"],
                "met": mixed["db_growth_bytes"] / mixed["messages"] <= GROWTH_TARGET,
            },
        },
        "heartbeat_hold_off_bytes": each["write_bytes_per_message"],
    }


def render(report: dict[str, Any]) -> str:
    rows = [
        [
            r["scenario"],
            "-" if r["hold_s"] is None else fmt(r["hold_s"]),
            str(r["messages"]),
            fmt(r["write_bytes"] / 1024),
            fmt(r["write_bytes_per_message"], 0),
            fmt(r["write_bytes"] / r["payload_bytes"], 2),
            fmt(r["db_growth_bytes"] / r["messages"], 0),
            fmt(r["load_average"], 2),
        ]
        for r in report["results"]
    ]
    headers = (
        "scenario",
        "hold s",
        "msgs",
        "KiB written",
        "B/msg",
        "x payload",
        "db B/msg",
        "load",
    )
    lines = [table(headers, rows), ""]
    for name, t in report["targets"].items():
        lines.append(f"{name}: {fmt(t['measured'], 2)} (target {t['target']}) {verdict(t['met'])}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> Any:
    parser = bench_parser("bench.writes", __doc__, out=OUT, workdir_help="keep the stores here")
    parser.add_argument("--beats", type=int, default=30, help="heartbeats per device")
    parser.add_argument("--beat-every", type=float, default=6.0, help="seconds between beats")
    parser.add_argument(
        "--hold",
        type=float,
        default=12.0,
        help="retention.heartbeat_hold_s (scaled as --beat-every)",
    )
    parser.add_argument("--events", type=int, default=20_000, help="mirror events drained")
    parser.add_argument("--mix", type=int, default=20_000, help="ingest-mix events drained")
    parser.add_argument("--live", type=int, default=500, help="mirror events sent live")
    parser.add_argument("--rate", type=float, default=100.0, help="live events per second")
    parser.add_argument(
        "--old-config",
        action="store_true",
        help="no retention: section, for measuring an older checkout (set PYTHONPATH to it)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    global OLD_CONFIG  # noqa: PLW0603 - a switch for the whole run
    args = parse_args(argv)
    OLD_CONFIG = args.old_config
    report = run(args)
    finish(report, args.out, render)
    return 0 if all(r["exit_code"] == 0 for r in report["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
