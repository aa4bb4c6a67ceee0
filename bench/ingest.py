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
    columns,
    fmt,
    load_average,
    now,
    positive,
    progress,
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
    got: dict[str, Any] = {"entered_at": entered, "last_at": 0.0, "received": 0}
    seen, done = set[bytes](), threading.Event()

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
    return got | {"connected_at": peer.connected_at, "unique": len(seen)}


def published(broker: Any, messages: list[Message]) -> dict[str, Any]:
    """``messages`` from a publisher process; its rate from the first publish to the last PUBACK."""
    got = Child(publisher, Address(broker.host, broker.port), messages).start().result()
    rate = len(messages) / (got["last_puback_at"] - got["first_publish_at"])
    return {**got, "publisher_msgs_per_s": rate}


def rates(mode: str, count: int, sent: Any, *, ended: float, started: float, begun: float) -> Any:
    """The rate from the start (CONNACK, the first publish) and from the process's start."""
    seconds, from_start = ended - started, ended - begun
    return {
        "mode": mode,
        "load_average": load_average(),
        "seconds": seconds,
        "msgs_per_s": count / seconds,
        "seconds_from_start": from_start,
        "msgs_per_s_from_start": count / from_start,
        "publisher_msgs_per_s": sent["publisher_msgs_per_s"],
    }


def measure_bare(work: Path, messages: list[Message], mode: str) -> dict[str, Any]:
    count = len(messages)
    with running_broker(work / f"broker-bare-{mode}") as broker:
        address = Address(broker.host, broker.port)
        Child(bare_subscriber, address, count, "prime").start().result()
        subscriber = Child(bare_subscriber, address, count, mode)
        if mode == "drain":
            sent = published(broker, messages)
            got = subscriber.start().result()
            started, begun = got["connected_at"], got["entered_at"]
        else:
            subscriber.start().wait_ready()
            sent = published(broker, messages)
            got = subscriber.result()
            started = begun = sent["first_publish_at"]
    checks = {"received": got["received"], "unique": got["unique"], "lost": count - got["unique"]}
    checks["duplicates"] = got["received"] - got["unique"]
    return {
        "subscriber": "bare",
        **rates(mode, count, sent, ended=got["last_at"], started=started, begun=begun),
        **checks,
    }


def verify(reader: StoreReader, daemon: Any, expected_events: int, sessions: int) -> Any:
    count = lambda where: reader.scalar(f"SELECT count(*) FROM events WHERE {where}")  # noqa: E731, S608
    check: dict[str, Any] = {
        "events": count("type != 'heartbeat'"),
        "expected_events": expected_events,
    }
    check["heartbeat_day_rows"] = beat_rows = count("type = 'heartbeat'")
    check["distinct_events"] = distinct = reader.scalar(
        "SELECT count(DISTINCT event_id) FROM events"
    )
    beat_days = reader.scalar(
        "SELECT count(DISTINCT source_id || substr(occurred_at, 1, 10))"
        " FROM events WHERE type = 'heartbeat'"
    )
    statuses = dict(reader.rows("SELECT status, count(*) FROM sessions GROUP BY status"))
    check |= {"sessions": statuses, "expected_sessions": sessions}
    check["dead_letters"] = dead = reader.scalar("SELECT count(*) FROM dead_letters")
    check["redelivered_duplicates"] = len(daemon.log_events("event_duplicate"))
    events = check["events"]
    ok = events == expected_events and distinct == events + beat_rows == events + beat_days
    return check | {"ok": ok and statuses == {"completed": sessions} and dead == 0}


def measure_daemon(
    work: Path,
    messages: list[Message],
    mode: str,
    *,
    sessions: int,
    count: int,
    mqtt: Any,
    profile: Path | None = None,
) -> Any:
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
            sent = published(daemon.broker, messages)
            daemon.start()
        else:
            wait_idle(daemon.pid)
        spy = None if profile is None else PySpyRecord(daemon.pid, profile)
        if mode == "drain":
            started = daemon.wait_for("mqtt_connected")
            startup_s, begun = started - daemon.spawned_at, daemon.spawned_at
        else:
            sent = published(daemon.broker, messages)
            started = begun = sent["first_publish_at"]
        # Each device's last message is a session_ended, after its heartbeats.
        finished = reader.at_least(COMPLETED, sessions, timeout=DRAIN_TIMEOUT_S)
        if spy is not None:
            spy.stop()
        exit_code = daemon.stop()
        check = verify(reader, daemon, 2 * sessions, sessions)
    return {
        "subscriber": "needlecare",
        **rates(mode, len(messages), sent, ended=finished, started=started, begun=begun),
        "spawn_to_connected_s": startup_s,
        "exit_code": exit_code,
        "check": check,
    }


def _median_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    median = dict(sorted(runs, key=lambda r: r["msgs_per_s"])[(len(runs) - 1) // 2])
    median["runs_msgs_per_s"] = [r["msgs_per_s"] for r in runs]
    median["runs_msgs_per_s_from_start"] = [r["msgs_per_s_from_start"] for r in runs]
    median["runs_verified"] = all(r.get("check", {"ok": True})["ok"] for r in runs)
    median["runs_lost"] = sum(r.get("lost", 0) for r in runs)
    median["runs_duplicates"] = sum(r.get("duplicates", 0) for r in runs)
    return median


def run(args: Any, work: Path) -> dict[str, Any]:
    tag = f"ing{os.getpid()}"
    messages, sessions = build_events(args.events, devices=args.devices, block=args.block, tag=tag)
    mqtt = {} if args.receive_maximum is None else {"receive_maximum": args.receive_maximum}
    r: dict[str, Any] = {"events": args.events, "event_bytes": EVENT_BYTES, "sessions": sessions}
    r |= {"devices": args.devices, "block": args.block, "repeat": args.repeat}
    r |= {"mqtt_options": mqtt, "target_ratio": TARGET_RATIO, "profile": None}
    options = {"sessions": sessions, "count": args.devices, "mqtt": mqtt}
    runs: list[dict[str, Any]] = []
    for attempt in range(args.repeat):
        for mode in ("drain", "live"):
            progress(f"ingest {mode}: bare subscriber, then needlecare, {len(messages):,} messages")
            runs.append(measure_bare(work / f"round{attempt}", messages, mode))
            runs.append(measure_daemon(work / f"round{attempt}", messages, mode, **options))
    if args.py_spy is not None:
        progress(f"ingest drain under py-spy -> {args.py_spy}")
        args.py_spy.parent.mkdir(parents=True, exist_ok=True)
        sampled = measure_daemon(
            work / "profiled", messages, "drain", **options, profile=args.py_spy
        )
        summary = lambda within: profile_summary(args.py_spy, within=within)  # noqa: E731
        r["profile"] = {"raw": str(args.py_spy), "msgs_per_s_while_sampled": sampled["msgs_per_s"]}
        r["profile"] |= {"core": summary("CoreLoop.run"), "mqtt_thread": summary("MqttClient._run")}
    keys = [(m, s) for m in ("drain", "live") for s in ("bare", "needlecare")]
    r["results"] = [
        _median_runs([x for x in runs if (x["mode"], x["subscriber"]) == k]) for k in keys
    ]
    rate = {(x["mode"], x["subscriber"]): x for x in r["results"]}
    ratio = lambda mode, key="msgs_per_s": rate[mode, "needlecare"][key] / rate[mode, "bare"][key]  # noqa: E731
    r["ratios"] = {"drain": ratio("drain"), "live": ratio("live")}
    r["ratios"]["drain_from_start"] = ratio("drain", "msgs_per_s_from_start")
    r["target_met"] = all(x >= TARGET_RATIO for x in r["ratios"].values())
    clean = lambda x: x["runs_verified"] and x["runs_lost"] == x["runs_duplicates"] == 0  # noqa: E731
    return r | {"verified": all(clean(x) for x in r["results"])}


def delivery(r: dict[str, Any]) -> str:
    if r["subscriber"] == "bare":
        return f"lost {r['runs_lost']}, dup {r['runs_duplicates']}"
    return "exactly once" if r["runs_verified"] else "FAILED"


each_run = lambda rates: " / ".join(fmt(rate, 0) for rate in rates)  # noqa: E731
SCENARIOS = {
    "mode": lambda r: r["mode"],
    "subscriber": lambda r: r["subscriber"],
    "s": lambda r: fmt(r["seconds"], 2),
    "msgs/s": lambda r: fmt(r["msgs_per_s"], 0),
    "runs msgs/s": lambda r: each_run(r["runs_msgs_per_s"]),
    "runs from start": lambda r: each_run(r["runs_msgs_per_s_from_start"]),
    "publisher msgs/s": lambda r: fmt(r["publisher_msgs_per_s"], 0),
    "delivery": delivery,
}
HEAD = """\
Ingest: {events:,} x {event_bytes} B, QoS 1, {sessions} sessions on {devices} devices{options}; \
median of {repeat} runs
{scenarios}
From start: the daemon's drain from its spawn; bare's from its subscriber function's entry \
(after its interpreter started and imported: kinder to bare).
"""
CHECK = """\
{mode}: store holds {check[events]:,} session events (expected {check[expected_events]:,}), \
{check[heartbeat_day_rows]} heartbeat day rows, sessions {check[sessions]}, dead letters \
{check[dead_letters]}, redelivered duplicates {check[redelivered_duplicates]}"""
PROFILE = """
py-spy, daemon drain ({msgs_per_s_while_sampled:,.0f} msgs/s while sampled; raw stacks in \
{raw}); core thread, {core[samples]} samples:
  self:"""


def render(report: dict[str, Any]) -> str:
    options = f", mqtt {report['mqtt_options']}" if report["mqtt_options"] else ""
    scenarios = columns(SCENARIOS, report["results"])
    lines = [HEAD.format_map(report | {"options": options, "scenarios": scenarios})]
    target = report["target_ratio"]
    for mode, r in report["ratios"].items():
        lines.append(
            f"needlecare / bare ({mode}): {r:.0%} (target >= {target:.0%}: {verdict(r >= target)})"
        )
    lines += [CHECK.format_map(r) for r in report["results"] if "check" in r]
    if (profile := report["profile"]) is not None:
        lines.append(PROFILE.format_map(profile))
        lines += [f"    {share:6.1%}  {name}" for name, share in profile["core"]["self"][:12]]
        lines.append("  inclusive:")
        lines += [f"    {share:6.1%}  {name}" for name, share in profile["core"]["inclusive"][:20]]
    return "\n".join(lines)


OPTIONS = {
    "--events": (positive, 20_000, "device events"),
    "--block": (int, 100, "messages per session"),
    "--devices": (positive, 20, "devices, one profile each"),
    "--repeat": (positive, 3, "runs per scenario"),
    "--receive-maximum": (int, None, "mqtt.receive_maximum (default: 100)"),
    "--py-spy": (Path, None, "also profile a daemon drain, raw stacks here"),
}
BENCH = Bench("ingest", __doc__, run, render, ok=lambda r: r["verified"], options=OPTIONS)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
