"""Ingest throughput: the daemon against a bare paho subscriber, through one real Mosquitto.

**drain**: queued while the subscriber is offline, timed from its CONNACK and from its
process start (bare: from its function's entry, after its imports: kinder to bare);
**live**: from the first publish. The events and checks: bench/README.md.
Target: needlecare >= 60 % of bare.
"""

import os
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.harness.daemon import StoreReader, devices, running_daemon, wait_for_store
from bench.harness.mqtt import Address, Message, Peer, pad_json, running_broker
from bench.harness.proc import Child, PySpyRecord, profile_summary, wait_idle
from bench.harness.report import (
    Bench,
    BenchError,
    fmt,
    load_average,
    now,
    progress,
    table,
    verdict,
    wall_clock,
)

EVENT_BYTES, PUBLISHER_INFLIGHT, SESSION_EXPIRY_S = 200, 100, 3600
TARGET_RATIO, DRAIN_TIMEOUT_S = 0.60, 300.0
TOPIC_FILTER = "needlecare/device/+/event"
COMPLETED = "SELECT count(*) FROM sessions WHERE status = 'completed'"


def _event(kind: str, event_id: str, stamp: str, block: int) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": event_id, "type": kind, "timestamp": stamp}
    if kind == "session_started":
        body |= {"needle_depth_mm": 0.5, "zones": ["forehead", "cheeks"], "setting": "home"}
        body["session_ref"] = f"s-{block}"
    elif kind == "session_ended":
        body |= {"session_ref": f"s-{block}", "passes": 4, "duration_s": 900}
    else:
        body |= {"battery_pct": 80, "cartridge_uses": block % 30}
    return body


def build_events(count: int, *, devices: int, block: int, tag: str) -> tuple[list[Message], int]:
    """Blocks (a start, heartbeats, an end) to the devices in turn, heartbeats left over."""
    base = wall_clock()
    messages: list[Message] = []
    sessions = count // block if block >= 2 else 0
    for i in range(count):
        number, position = divmod(i, block)
        kind = "heartbeat"
        if number < sessions:
            kind = {0: "session_started", block - 1: "session_ended"}.get(position, "heartbeat")
        stamp = (base + timedelta(milliseconds=i)).isoformat(timespec="milliseconds")
        body = _event(kind, f"{tag}-{i:07d}", stamp, number)
        topic = f"needlecare/device/pen{number % devices:02d}/event"
        messages.append((topic, pad_json(body, EVENT_BYTES)))
    return messages, sessions


def publisher(broker: Address, messages: list[Message], *, ready: Callable[[], None]) -> Any:
    """Publish every message with QoS 1; stamps of the first publish and the last PUBACK."""
    acked, last, done = 0, 0.0, threading.Event()

    def on_puback(_mid: int, stamp: float) -> None:
        nonlocal acked, last
        acked, last = acked + 1, stamp
        if acked == len(messages):
            done.set()

    client_id = f"bench-publisher-{os.getpid()}"
    with Peer(broker, client_id, on_puback=on_puback, max_inflight=PUBLISHER_INFLIGHT) as peer:
        ready()
        first = now()
        for topic, payload in messages:
            peer.publish(topic, payload)  # raises past paho's 65,535 unacknowledged
        if not done.wait(DRAIN_TIMEOUT_S):
            raise BenchError(f"only {acked} of {len(messages)} publishes acknowledged")
    return {"first_publish_at": first, "last_puback_at": last}


def bare_subscriber(broker: Address, expected: int, mode: str, *, ready: Callable[[], None]) -> Any:
    """paho, QoS 1, a persistent session (``prime`` makes it) counting what arrives."""
    entered = now()  # after this process's interpreter start and imports: kind to bare
    seen: set[bytes] = set()
    got = {"last_at": 0.0, "received": 0}
    done = threading.Event()

    def on_message(message: Any, stamp: float) -> None:
        got["received"] += 1
        seen.add(bytes(message.payload))
        got["last_at"] = stamp
        if len(seen) >= expected:
            done.set()

    session = {"clean_start": mode == "prime", "session_expiry": SESSION_EXPIRY_S}
    with Peer(broker, "bench-bare", on_message=on_message, **session) as peer:
        if mode == "prime":
            peer.subscribe(TOPIC_FILTER)
        ready()
        if mode != "prime":
            done.wait(DRAIN_TIMEOUT_S)
    return {"entered_at": entered, "connected_at": peer.connected_at, **got, "unique": len(seen)}


def _publish(broker: Any, messages: list[Message]) -> dict[str, Any]:
    got = Child(publisher, Address(broker.host, broker.port), messages).start().result()
    rate = len(messages) / (got["last_puback_at"] - got["first_publish_at"])
    return {**got, "publisher_msgs_per_s": rate}


def _rates(count: int, mode: str, seconds: float, from_start: float, published: Any) -> Any:
    return {"mode": mode, "load_average": load_average(), "seconds": seconds,
            "msgs_per_s": count / seconds, "seconds_from_start": from_start,
            "msgs_per_s_from_start": count / from_start,
            "publisher_msgs_per_s": published["publisher_msgs_per_s"]}  # fmt: skip


def measure_bare(work: Path, messages: list[Message], mode: str) -> dict[str, Any]:
    count = len(messages)
    with running_broker(work / f"broker-bare-{mode}") as broker:
        address = Address(broker.host, broker.port)
        Child(bare_subscriber, address, count, "prime").start().result()
        subscriber = Child(bare_subscriber, address, count, mode)
        if mode == "drain":
            published = _publish(broker, messages)
            got = subscriber.start().result()
            started, begun = got["connected_at"], got["entered_at"]
        else:
            subscriber.start().wait_ready()
            published = _publish(broker, messages)
            got = subscriber.result()
            started = begun = published["first_publish_at"]
    return {"subscriber": "bare", **_rates(count, mode, got["last_at"] - started,
            got["last_at"] - begun, published), "received": got["received"],
            "unique": got["unique"], "lost": count - got["unique"],
            "duplicates": got["received"] - got["unique"]}  # fmt: skip


def verify(reader: StoreReader, daemon: Any, expected_events: int, sessions: int) -> Any:
    events = reader.scalar("SELECT count(*) FROM events WHERE type != 'heartbeat'")
    distinct = reader.scalar("SELECT count(DISTINCT event_id) FROM events")
    beat_rows = reader.scalar("SELECT count(*) FROM events WHERE type = 'heartbeat'")
    beat_days = reader.scalar("SELECT count(DISTINCT source_id || substr(occurred_at, 1, 10))"
                              " FROM events WHERE type = 'heartbeat'")  # fmt: skip
    statuses = dict(reader.rows("SELECT status, count(*) FROM sessions GROUP BY status"))
    dead = reader.scalar("SELECT count(*) FROM dead_letters")
    ok = events == expected_events and distinct == events + beat_rows == events + beat_days
    return {"events": events, "heartbeat_day_rows": beat_rows, "distinct_events": distinct,
            "expected_events": expected_events, "sessions": statuses,
            "expected_sessions": sessions, "dead_letters": dead,
            "redelivered_duplicates": len(daemon.log_events("event_duplicate")),
            "ok": ok and statuses == {"completed": sessions} and dead == 0}  # fmt: skip


def measure_daemon(work: Path, messages: list[Message], mode: str, *, sessions: int,
                   count: int, mqtt: Any, profile: Path | None = None) -> Any:  # fmt: skip
    sections = {"mqtt": {"client_id": "needlecare-bench", **mqtt}, "mirrors": {"hallway": {}}}
    with (
        running_daemon(work / f"daemon-{mode}", **sections, **devices(count)) as daemon,
        wait_for_store(daemon.db) as reader,
    ):
        probe = pad_json(_event("heartbeat", f"{mode}-probe", wall_clock().isoformat(), 0), 200)
        with Peer(daemon.broker, f"bench-probe-{mode}") as peer:  # the subscription works
            peer.send([("needlecare/device/pen00/event", probe)])
        reader.at_least(f"SELECT count(*) FROM events WHERE event_id = '{mode}-probe'", 1)  # noqa: S608
        startup_s = None
        if mode == "drain":
            daemon.restart_clean()
            published = _publish(daemon.broker, messages)
            daemon.start()
        else:
            wait_idle(daemon.pid)
        spy = None if profile is None else PySpyRecord(daemon.pid, profile)
        if mode == "drain":
            started = daemon.wait_for("mqtt_connected")
            startup_s, begun = started - daemon.spawned_at, daemon.spawned_at
        else:
            published = _publish(daemon.broker, messages)
            started = begun = published["first_publish_at"]
        # Each device's last message is a session_ended, after its heartbeats.
        finished = reader.at_least(COMPLETED, sessions, timeout=DRAIN_TIMEOUT_S)
        if spy is not None:
            spy.stop()
        exit_code = daemon.stop()
        check = verify(reader, daemon, 2 * sessions, sessions)
    return {"subscriber": "needlecare", **_rates(len(messages), mode, finished - started,
            finished - begun, published), "spawn_to_connected_s": startup_s,
            "exit_code": exit_code, "check": check}  # fmt: skip


def _median_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    median = dict(sorted(runs, key=lambda r: r["msgs_per_s"])[(len(runs) - 1) // 2])
    median["runs_msgs_per_s"] = [r["msgs_per_s"] for r in runs]
    median["runs_msgs_per_s_from_start"] = [r["msgs_per_s_from_start"] for r in runs]
    median["runs_verified"] = all(r.get("check", {"ok": True})["ok"] for r in runs)
    median["runs_lost"] = sum(r.get("lost", 0) for r in runs)
    median["runs_duplicates"] = sum(r.get("duplicates", 0) for r in runs)
    return median


def run(args: Any, work: Path) -> dict[str, Any]:
    if min(args.events, args.devices, args.repeat) < 1:
        raise SystemExit("--events, --devices and --repeat must be positive")
    messages, sessions = build_events(args.events, devices=args.devices, block=args.block,
                                      tag=f"ing{os.getpid()}")  # fmt: skip
    mqtt = {} if args.receive_maximum is None else {"receive_maximum": args.receive_maximum}
    daemon = lambda w, mode, p=None: measure_daemon(  # noqa: E731
        w, messages, mode, sessions=sessions, count=args.devices, mqtt=mqtt, profile=p
    )
    runs: list[dict[str, Any]] = []
    for attempt in range(args.repeat):
        for mode in ("drain", "live"):
            progress(f"ingest {mode}: bare subscriber, then needlecare, {len(messages):,} messages")
            runs += [measure_bare(work / f"round{attempt}", messages, mode),
                     daemon(work / f"round{attempt}", mode)]  # fmt: skip
    profiled = None
    if args.py_spy is not None:
        progress(f"ingest drain under py-spy -> {args.py_spy}")
        args.py_spy.parent.mkdir(parents=True, exist_ok=True)
        sampled = daemon(work / "profiled", "drain", args.py_spy)
        summary = lambda within: profile_summary(args.py_spy, within=within)  # noqa: E731
        profiled = {"raw": str(args.py_spy), "msgs_per_s_while_sampled": sampled["msgs_per_s"],
                    "core": summary("CoreLoop.run"),
                    "mqtt_thread": summary("MqttClient._run")}  # fmt: skip
    keys = [(m, s) for m in ("drain", "live") for s in ("bare", "needlecare")]
    scenarios = [_median_runs([r for r in runs if (r["mode"], r["subscriber"]) == k]) for k in keys]
    rate = {(r["mode"], r["subscriber"]): r for r in scenarios}
    ratio = lambda mode, key="msgs_per_s": rate[mode, "needlecare"][key] / rate[mode, "bare"][key]  # noqa: E731
    ratios = {"drain": ratio("drain"), "live": ratio("live"),
              "drain_from_start": ratio("drain", "msgs_per_s_from_start")}  # fmt: skip
    return {
        "events": args.events, "event_bytes": EVENT_BYTES, "sessions": sessions,
        "devices": args.devices, "block": args.block, "repeat": args.repeat,
        "mqtt_options": mqtt, "results": scenarios, "ratios": ratios,
        "target_ratio": TARGET_RATIO,
        "target_met": all(r >= TARGET_RATIO for r in ratios.values()),
        "verified": all(r["runs_verified"] and r["runs_lost"] == r["runs_duplicates"] == 0
                        for r in scenarios),
        "profile": profiled,
    }  # fmt: skip


def _row(r: dict[str, Any]) -> list[str]:
    delivery = "exactly once" if r["runs_verified"] else "FAILED"
    if r["subscriber"] == "bare":
        delivery = f"lost {r['runs_lost']}, dup {r['runs_duplicates']}"
    runs = lambda key: " / ".join(fmt(rate, 0) for rate in r[key])  # noqa: E731
    return [r["mode"], r["subscriber"], fmt(r["seconds"], 2), fmt(r["msgs_per_s"], 0),
            runs("runs_msgs_per_s"), runs("runs_msgs_per_s_from_start"),
            fmt(r["publisher_msgs_per_s"], 0), delivery]  # fmt: skip


def render(report: dict[str, Any]) -> str:
    headers = ("mode", "subscriber", "s", "msgs/s", "runs msgs/s", "runs from start",
               "publisher msgs/s", "delivery")  # fmt: skip
    target = report["target_ratio"]
    options = f", mqtt {report['mqtt_options']}" if report["mqtt_options"] else ""
    lines = [
        f"Ingest: {report['events']:,} x {report['event_bytes']} B, QoS 1,"
        f" {report['sessions']} sessions on {report['devices']} devices{options};"
        f" median of {report['repeat']} runs",
        table(headers, [_row(r) for r in report["results"]]),
        "From start: the daemon's drain from its spawn; bare's from its subscriber function's"
        " entry (after its interpreter started and imported: kinder to bare).",
        "",
    ]
    lines += [f"needlecare / bare ({mode}): {r:.0%} (target >= {target:.0%}:"
              f" {verdict(r >= target)})" for mode, r in report["ratios"].items()]  # fmt: skip
    for r in report["results"]:
        if "check" in r:
            c = r["check"]
            lines.append(
                f"{r['mode']}: store holds {c['events']:,} session events (expected"
                f" {c['expected_events']:,}), {c['heartbeat_day_rows']} heartbeat day rows,"
                f" sessions {c['sessions']}, dead letters {c['dead_letters']}, redelivered"
                f" duplicates {c['redelivered_duplicates']}"
            )
    if (profile := report["profile"]) is not None:
        core = profile["core"]
        lines += ["", f"py-spy, daemon drain ({profile['msgs_per_s_while_sampled']:,.0f} msgs/s"
                  f" while sampled; raw stacks in {profile['raw']}); core thread,"
                  f" {core['samples']} samples:", "  self:"]  # fmt: skip
        lines += [f"    {share:6.1%}  {name}" for name, share in core["self"][:12]]
        lines += ["  inclusive:", *(f"    {s:6.1%}  {n}" for n, s in core["inclusive"][:20])]
    return "\n".join(lines)


OPTIONS = {"--events": (int, 20_000, "device events"),
           "--block": (int, 100, "messages per session"),
           "--devices": (int, 20, "devices, one profile each"),
           "--repeat": (int, 3, "runs per scenario"),
           "--receive-maximum": (int, None, "mqtt.receive_maximum (default: 100)"),
           "--py-spy": (Path, None, "also profile a daemon drain, raw stacks here")}  # fmt: skip
BENCH = Bench("ingest", __doc__, run, render, ok=lambda r: r["verified"], options=OPTIONS)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
