"""Ingest throughput: the daemon against a bare paho subscriber, through one real Mosquitto.

N device events of ~200 bytes (heartbeats with unique event ids; every --block-th
message starts a session and the one before the next start ends it) are published
with QoS 1 by a separate publisher process. Each scenario gets a fresh broker
(persistence off, queues unlimited) and a fresh store:

* **drain**: the subscriber's persistent session exists, the subscriber is offline,
  all N are published and queued; then it connects and the clock runs from its
  CONNACK until the last message is in (bare) or committed (daemon: the store,
  polled read-only every 10 ms, holds all N events).
* **live**: the subscriber is connected; the clock runs from the publisher's first
  publish until the same end.

The bare subscriber is paho with a persistent session and automatic acks, doing
nothing per message but counting it. The daemon validates each message, writes it
durably (WAL, synchronous=FULL) and acknowledges it only after the commit. At the
end every event must be in the store exactly once and every session completed.

    python -m bench.ingest [--events 20000] [--block 100] [--receive-maximum N]
"""

import argparse
import os
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from bench._common import (
    BenchError,
    Child,
    Daemon,
    Peer,
    PySpyRecord,
    StoreReader,
    bench_parser,
    daemon_config,
    finish,
    fmt,
    load_average,
    machine,
    now,
    pad_json,
    profile_summary,
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
)
from needlecare_integrations.broker import MosquittoBroker

DEFAULT_EVENTS = 20_000
DEFAULT_BLOCK = 100
DEFAULT_DEVICES = 20
DEFAULT_REPEAT = 3
DEFAULT_OUT = Path("bench/results/ingest.json")
EVENT_BYTES = 200
PUBLISHER_INFLIGHT = 100
SESSION_EXPIRY_S = 3600
TARGET_RATIO = 0.60
TOPIC_FILTER = "needlecare/device/+/event"
DRAIN_TIMEOUT_S = 300.0

Message = tuple[str, bytes]


# -- the workload ------------------------------------------------------------------------


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
    """``count`` messages and the number of sessions they hold.

    Blocks of ``block`` messages go to the devices in turn; each block is
    session_started, heartbeats, session_ended. What is left over is heartbeats.
    """
    base = wall_clock()
    messages: list[Message] = []
    sessions = count // block if block >= 2 else 0
    for i in range(count):
        number, position = divmod(i, block)
        device = f"pen{number % devices:02d}"
        kind = "heartbeat"
        if number < sessions:
            kind = {0: "session_started", block - 1: "session_ended"}.get(position, "heartbeat")
        stamp = (base + timedelta(milliseconds=i)).isoformat(timespec="milliseconds")
        body = _event(kind, f"{tag}-{i:07d}", stamp, number)
        messages.append((f"needlecare/device/{device}/event", pad_json(body, EVENT_BYTES)))
    return messages, sessions


def ingest_config(broker: MosquittoBroker, db: Path, devices: int, **mqtt: Any) -> dict[str, Any]:
    profiles = {f"p{d:02d}": {"timezone": "Europe/Berlin"} for d in range(devices)}
    return daemon_config(
        broker,
        db,
        mqtt={"client_id": "needlecare-bench", **mqtt},
        profiles=profiles,
        devices={f"pen{d:02d}": {"owner": f"p{d:02d}"} for d in range(devices)},
        mirrors={"hallway": {}},
    )


# -- the actors in their own processes ------------------------------------------------------


def publisher(
    host: str, port: int, messages: list[Message], inflight: int, *, ready: Callable[[], None]
) -> dict[str, Any]:
    """Publish every message with QoS 1; stamps of the first publish and the last PUBACK."""
    acked = 0
    last = 0.0
    done = threading.Event()

    def on_puback(_mid: int, stamp: float) -> None:
        nonlocal acked, last
        acked += 1
        last = stamp
        if acked == len(messages):
            done.set()

    client_id = f"bench-publisher-{os.getpid()}"
    with Peer(host, port, client_id=client_id, on_puback=on_puback, max_inflight=inflight) as peer:
        ready()
        first = now()
        for topic, payload in messages:
            peer.client.publish(topic, payload, qos=1)
        if not done.wait(DRAIN_TIMEOUT_S):
            raise BenchError(f"only {acked} of {len(messages)} publishes acknowledged")
    return {"first_publish_at": first, "last_puback_at": last, "published": acked}


def bare_subscriber(
    host: str, port: int, expected: int, mode: str, *, ready: Callable[[], None]
) -> dict[str, Any]:
    """paho, QoS 1, a persistent session and automatic acks; counts what arrives.

    ``prime`` makes the session and its subscription and leaves; ``drain`` and
    ``live`` resume it and wait for ``expected`` distinct messages.
    """
    entered = now()  # after this process's interpreter start and imports: kind to bare
    client_id = "bench-bare"
    if mode == "prime":
        with Peer(
            host, port, client_id=client_id, clean_start=True, session_expiry=SESSION_EXPIRY_S
        ) as peer:
            peer.subscribe(TOPIC_FILTER)
        ready()
        return {}
    seen: set[bytes] = set()
    stamps = {"first": 0.0, "last": 0.0, "received": 0}
    done = threading.Event()

    def on_message(message: mqtt.MQTTMessage, stamp: float) -> None:
        if not seen:
            stamps["first"] = stamp
        stamps["received"] += 1
        seen.add(bytes(message.payload))
        stamps["last"] = stamp
        if len(seen) >= expected:
            done.set()

    with Peer(
        host,
        port,
        client_id=client_id,
        clean_start=False,
        session_expiry=SESSION_EXPIRY_S,
        on_message=on_message,
    ) as peer:
        ready()
        done.wait(DRAIN_TIMEOUT_S)
        connected_at = peer.connected_at
    return {
        "entered_at": entered,
        "connected_at": connected_at,
        "first_at": stamps["first"],
        "last_at": stamps["last"],
        "received": stamps["received"],
        "unique": len(seen),
    }


# -- scenarios -----------------------------------------------------------------------------------


def _publish_all(broker: MosquittoBroker, messages: list[Message]) -> dict[str, Any]:
    result: dict[str, Any] = (
        Child(publisher, broker.host, broker.port, messages, PUBLISHER_INFLIGHT).start().result()
    )
    return result


def measure_bare(workdir: Path, messages: list[Message], mode: str) -> dict[str, Any]:
    count = len(messages)
    with running_broker(workdir / f"broker-bare-{mode}") as broker:
        Child(bare_subscriber, broker.host, broker.port, count, "prime").start().result()
        if mode == "drain":
            published = _publish_all(broker, messages)
            got = Child(bare_subscriber, broker.host, broker.port, count, mode).start().result()
            started = got["connected_at"]
        else:
            subscriber = Child(bare_subscriber, broker.host, broker.port, count, mode).start()
            subscriber.wait_ready()
            published = _publish_all(broker, messages)
            got = subscriber.result()
            started = published["first_publish_at"]
    seconds = got["last_at"] - started
    from_start = got["last_at"] - (got["entered_at"] if mode == "drain" else started)
    return {
        "subscriber": "bare",
        "mode": mode,
        "load_average": load_average(),
        "seconds": seconds,
        "msgs_per_s": count / seconds,
        "seconds_from_start": from_start,
        "msgs_per_s_from_start": count / from_start,
        "received": got["received"],
        "unique": got["unique"],
        "lost": count - got["unique"],
        "duplicates": got["received"] - got["unique"],
        "publisher_msgs_per_s": count
        / (published["last_puback_at"] - published["first_publish_at"]),
    }


def _probe(broker: MosquittoBroker, reader: StoreReader, tag: str) -> None:
    """One event through the daemon: its subscription is in place and working."""
    payload = pad_json(_event("heartbeat", f"{tag}-probe", wall_clock().isoformat(), 0), 200)
    with Peer(broker.host, broker.port, client_id=f"bench-probe-{tag}") as peer:
        peer.acked_at(peer.publish("needlecare/device/pen00/event", payload))
    reader.wait_until(
        "SELECT count(*) FROM events WHERE event_id = ?", lambda n: n == 1, params=(f"{tag}-probe",)
    )


def _verify(daemon: Daemon, expected_events: int, expected_sessions: int) -> dict[str, Any]:
    """Every session event once, one heartbeat row per device and UTC day, nothing rejected.

    ``expected_events`` counts the session events (and the probe); heartbeats after a
    device's first of the day only move its state (retention), so they are checked
    as day rows, not one by one.
    """
    with StoreReader(daemon.db) as reader:
        events = reader.scalar("SELECT count(*) FROM events WHERE type != 'heartbeat'")
        distinct = reader.scalar("SELECT count(DISTINCT event_id) FROM events")
        beat_rows = reader.scalar("SELECT count(*) FROM events WHERE type = 'heartbeat'")
        beat_days = reader.scalar(
            "SELECT count(DISTINCT source_id || substr(occurred_at, 1, 10)) FROM events"
            " WHERE type = 'heartbeat'"
        )
        statuses = dict(reader.rows("SELECT status, count(*) FROM sessions GROUP BY status"))
        dead = reader.scalar("SELECT count(*) FROM dead_letters")
    duplicates = sum(1 for e in daemon.log_events() if e.get("event") == "event_duplicate")
    ok = (
        events == expected_events
        and distinct == events + beat_rows
        and beat_rows == beat_days
        and statuses == {"completed": expected_sessions}
        and dead == 0
    )
    return {
        "events": events,
        "heartbeat_day_rows": beat_rows,
        "distinct_events": distinct,
        "expected_events": expected_events,
        "sessions": statuses,
        "expected_sessions": expected_sessions,
        "dead_letters": dead,
        "redelivered_duplicates": duplicates,
        "ok": ok,
    }


def measure_daemon(
    workdir: Path,
    messages: list[Message],
    mode: str,
    *,
    sessions: int,
    devices: int,
    mqtt_options: dict[str, Any],
    profile: Path | None = None,
) -> dict[str, Any]:
    """One scenario through the daemon; with ``profile``, py-spy samples its drain or live run."""
    count = len(messages)
    run_dir = workdir / f"daemon-{mode}"
    spy: PySpyRecord | None = None
    with running_broker(run_dir / "broker") as broker:
        config = ingest_config(broker, run_dir / "needlecare.db", devices, **mqtt_options)
        daemon = Daemon(run_dir, config).start()
        try:
            wait_online(broker)
            with wait_for_store(daemon.db) as reader:
                _probe(broker, reader, mode)
                total = 2 * sessions  # session events; the probe is the day's first beat
                if mode == "drain":
                    if daemon.stop() != 0:
                        raise BenchError(f"the daemon did not stop cleanly:\n{daemon.log_tail()}")
                    published = _publish_all(broker, messages)
                    daemon.start()
                    spy = None if profile is None else PySpyRecord(daemon.pid, profile)
                    started = daemon.wait_for("mqtt_connected")
                    startup_s = started - daemon.spawned_at
                else:
                    startup_s = None
                    wait_idle(daemon.pid)
                    spy = None if profile is None else PySpyRecord(daemon.pid, profile)
                    published = _publish_all(broker, messages)
                    started = published["first_publish_at"]
                # Each device's last message is a session_ended, after its heartbeats.
                finished = reader.wait_until(
                    "SELECT count(*) FROM sessions WHERE status = 'completed'",
                    lambda n: n is not None and n >= sessions,
                    timeout=DRAIN_TIMEOUT_S,
                )
            if spy is not None:
                spy.stop()
            exit_code = daemon.stop()
        except BenchError as error:
            raise BenchError(f"{error}\n--- the daemon's log ends:\n{daemon.log_tail()}") from error
        finally:
            daemon.stop()
    seconds = finished - started
    from_start = finished - (daemon.spawned_at if mode == "drain" else started)
    return {
        "subscriber": "needlecare",
        "mode": mode,
        "load_average": load_average(),
        "seconds": seconds,
        "msgs_per_s": count / seconds,
        "seconds_from_start": from_start,
        "msgs_per_s_from_start": count / from_start,
        "publisher_msgs_per_s": count
        / (published["last_puback_at"] - published["first_publish_at"]),
        "spawn_to_connected_s": startup_s,
        "exit_code": exit_code,
        "check": _verify(daemon, total, sessions),
    }


# -- the run -------------------------------------------------------------------------------------


def _median_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate, and every rate, of one scenario."""
    ranked = sorted(runs, key=lambda r: r["msgs_per_s"])
    median = dict(ranked[(len(ranked) - 1) // 2])
    median["runs_msgs_per_s"] = [r["msgs_per_s"] for r in runs]
    median["runs_msgs_per_s_from_start"] = [r["msgs_per_s_from_start"] for r in runs]
    median["runs_verified"] = all(r.get("check", {"ok": True})["ok"] for r in runs)
    median["runs_lost"] = sum(r.get("lost", 0) for r in runs)
    median["runs_duplicates"] = sum(r.get("duplicates", 0) for r in runs)
    return median


def _one_round(
    work: Path, messages: list[Message], *, sessions: int, devices: int, options: dict[str, Any]
) -> list[dict[str, Any]]:
    results = []
    for mode in ("drain", "live"):
        progress(f"ingest {mode}: bare subscriber, {len(messages):,} messages")
        results.append(measure_bare(work, messages, mode))
        progress(f"ingest {mode}: needlecare, {len(messages):,} messages")
        results.append(
            measure_daemon(
                work, messages, mode, sessions=sessions, devices=devices, mqtt_options=options
            )
        )
    return results


def _profile(
    work: Path,
    messages: list[Message],
    out: Path,
    *,
    sessions: int,
    devices: int,
    options: dict[str, Any],
) -> dict[str, Any]:
    """One more drain through the daemon with py-spy attached (its rate is not a result)."""
    progress(f"ingest drain under py-spy -> {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    profiled = measure_daemon(
        work / "profiled",
        messages,
        "drain",
        sessions=sessions,
        devices=devices,
        mqtt_options=options,
        profile=out,
    )
    return {
        "raw": str(out),
        "msgs_per_s_while_sampled": profiled["msgs_per_s"],
        "core": profile_summary(out, within="CoreLoop.run"),
        "mqtt_thread": profile_summary(out, within="MqttClient._run"),
    }


def run(
    count: int,
    *,
    block: int = DEFAULT_BLOCK,
    devices: int = DEFAULT_DEVICES,
    repeat: int = DEFAULT_REPEAT,
    mqtt_options: dict[str, Any] | None = None,
    profile: Path | None = None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Every scenario ``repeat`` times (medians reported), as the JSON report."""
    started_at = wall_clock()
    source_before = source_state()
    tag = f"ing{os.getpid()}"
    messages, sessions = build_events(count, devices=devices, block=block, tag=tag)
    options = mqtt_options or {}
    runs: list[dict[str, Any]] = []
    with workspace(workdir, "bench-ingest-") as work:
        for attempt in range(repeat):
            runs += _one_round(
                work / f"round{attempt}",
                messages,
                sessions=sessions,
                devices=devices,
                options=options,
            )
        profiled = None
        if profile is not None:
            profiled = _profile(
                work, messages, profile, sessions=sessions, devices=devices, options=options
            )
        machine_info = machine(work, source_before=source_before)
    scenarios = [
        _median_runs([r for r in runs if (r["mode"], r["subscriber"]) == key])
        for key in (
            ("drain", "bare"),
            ("drain", "needlecare"),
            ("live", "bare"),
            ("live", "needlecare"),
        )
    ]
    ratios = {mode: _ratio(scenarios, mode) for mode in ("drain", "live")}
    ratios["drain_from_start"] = _ratio(scenarios, "drain", key="msgs_per_s_from_start")
    return {
        "bench": "ingest",
        "started_at": started_at.isoformat(),
        "finished_at": wall_clock().isoformat(),
        "machine": machine_info,
        "events": count,
        "event_bytes": EVENT_BYTES,
        "sessions": sessions,
        "devices": devices,
        "block": block,
        "repeat": repeat,
        "mqtt_options": options,
        "results": scenarios,
        "ratios": ratios,
        "target_ratio": TARGET_RATIO,
        "target_met": all(r >= TARGET_RATIO for r in ratios.values()),
        "verified": all(r["runs_verified"] for r in scenarios)
        and all(r["runs_lost"] == r["runs_duplicates"] == 0 for r in scenarios),
        "profile": profiled,
    }


def _ratio(results: list[dict[str, Any]], mode: str, key: str = "msgs_per_s") -> float:
    rates = {r["subscriber"]: r[key] for r in results if r["mode"] == mode}
    return float(rates["needlecare"] / rates["bare"])


# -- output -------------------------------------------------------------------------------------


def _row(r: dict[str, Any]) -> list[str]:
    if r["subscriber"] == "bare":
        delivery = f"lost {r['runs_lost']}, dup {r['runs_duplicates']}"
    else:
        delivery = "exactly once" if r["runs_verified"] else "FAILED"
    return [
        r["mode"],
        r["subscriber"],
        fmt(r["seconds"], 2),
        fmt(r["msgs_per_s"], 0),
        " / ".join(fmt(rate, 0) for rate in r["runs_msgs_per_s"]),
        " / ".join(fmt(rate, 0) for rate in r["runs_msgs_per_s_from_start"]),
        fmt(r["publisher_msgs_per_s"], 0),
        delivery,
    ]


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    core = profile["core"]
    lines = [
        "",
        f"py-spy, daemon drain ({profile['msgs_per_s_while_sampled']:,.0f} msgs/s while sampled;"
        f" raw stacks in {profile['raw']}); core thread, {core['samples']} samples:",
        "  self:",
    ]
    lines += [f"    {share:6.1%}  {name}" for name, share in core["self"][:12]]
    lines.append("  inclusive:")
    lines += [f"    {share:6.1%}  {name}" for name, share in core["inclusive"][:20]]
    return lines


def render(report: dict[str, Any]) -> str:
    headers = (
        "mode", "subscriber", "s", "msgs/s", "runs msgs/s", "runs from start", "publisher msgs/s",
        "delivery",
    )  # fmt: skip
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
    for mode, ratio in report["ratios"].items():
        lines.append(
            f"needlecare / bare ({mode}): {ratio:.0%} (target >= {target:.0%}:"
            f" {verdict(ratio >= target)})"
        )
    for r in report["results"]:
        if "check" in r:
            c = r["check"]
            lines.append(
                f"{r['mode']}: store holds {c['events']:,} session events (expected"
                f" {c['expected_events']:,}), {c['heartbeat_day_rows']} heartbeat day rows,"
                f" sessions {c['sessions']},"
                f" dead letters {c['dead_letters']}, redelivered duplicates"
                f" {c['redelivered_duplicates']}"
            )
    if report["profile"] is not None:
        lines += _profile_lines(report["profile"])
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "bench.ingest", __doc__, out=DEFAULT_OUT, workdir_help="keep stores and logs here"
    )
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--block", type=int, default=DEFAULT_BLOCK, help="messages per session")
    parser.add_argument("--devices", type=int, default=DEFAULT_DEVICES)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs per scenario")
    parser.add_argument(
        "--receive-maximum", type=int, default=None, help="mqtt.receive_maximum (default: 100)"
    )
    parser.add_argument(
        "--py-spy", type=Path, default=None, help="also profile a daemon drain, raw stacks here"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, write the JSON; exit 1 if an event was lost or doubled."""
    args = parse_args(argv)
    if min(args.events, args.devices, args.repeat) < 1:
        raise SystemExit("--events, --devices and --repeat must be positive")
    options = {} if args.receive_maximum is None else {"receive_maximum": args.receive_maximum}
    report = run(
        args.events,
        block=args.block,
        devices=args.devices,
        repeat=args.repeat,
        mqtt_options=options,
        profile=args.py_spy,
        workdir=args.workdir,
    )
    finish(report, args.out, render)
    return 0 if report["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
