"""Latency: a session's end to its ``soothe`` prompt on the mirror, against a bare round trip.

One Mosquitto serves three responders, all running throughout, exercised in turn in
rounds so that background load falls on each alike:

* **needlecare** (``needlecare run``): per session, a session_started on a device of
  its own (waiting until the store holds the open session), then a session_ended;
  the clock runs from publishing the end (and, separately, from its PUBACK) to the
  receipt of that session's ``soothe`` notification on ``needlecare/mirror/hallway/
  notify``. The config's protocol keeps only ``soothe`` (mirror, no escalation):
  one prompt per session, no other step's traffic. Sessions take turns over
  --profiles profiles, so each start supersedes the profile's previous prompt.
* **bare FULL / bare NORMAL**: a paho subscriber that validates each request with
  pydantic, inserts and commits it into SQLite (WAL, synchronous FULL or NORMAL)
  and publishes a reply; the clock runs from the request's publish to the reply.

Every client sets TCP_NODELAY, and Mosquitto runs with ``set_tcp_nodelay true``.
The daemon's log timestamps split its latency into: receipt to the session recorded,
recorded to the reminder delivered, delivered to the notification's receipt.

    python -m bench.latency [--sessions 2000] [--profiles 20] [--rounds 10]
"""

import argparse
import json
import os
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bench._common import (
    BenchError,
    Child,
    Daemon,
    Peer,
    StoreReader,
    bench_parser,
    daemon_config,
    finish,
    fmt,
    load_average,
    machine,
    now,
    only_soothe,
    pad_json,
    percentiles,
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
from needlecare.domain.planning import reminder_id
from needlecare.domain.sessions import session_id_for
from needlecare_integrations.broker import MosquittoBroker

DEFAULT_SESSIONS = 2000
DEFAULT_PROFILES = 20
DEFAULT_ROUNDS = 5  # 400 sessions a round at the default 2,000: a p99 per round
DEFAULT_WARMUP = 20
DEFAULT_OUT = Path("bench/results/latency.json")
PAUSE_S = 0.005  # between measurements, and after a start is committed
REPLY_TIMEOUT_S = 10.0
EVENT_BYTES = 200
TARGET_P99_RATIO = 1.5  # issue 14: the median over the paired rounds of each round's ratio
NOTIFY_TOPIC = "needlecare/mirror/hallway/notify"
BARE_MODES = ("FULL", "NORMAL")


# -- the bare round trip, in its own process ---------------------------------------------------


class EndedEvent(BaseModel):
    """What the bare responder validates: the fields of a session_ended."""

    model_config = ConfigDict(extra="ignore", strict=True)

    event_id: str = Field(min_length=1, max_length=128)
    type: Literal["session_ended"]
    timestamp: AwareDatetime | None = Field(default=None, strict=False)
    session_ref: str | None = None
    passes: int | None = None
    duration_s: int | None = None


def _request_topic(mode: str) -> str:
    return f"bench/rt/{mode.lower()}/request"


def _reply_topic(mode: str) -> str:
    return f"bench/rt/{mode.lower()}/reply"


def bare_responder(
    host: str, port: int, db: str, mode: str, *, ready: Callable[[], None]
) -> dict[str, Any]:
    """Validate, insert + commit, reply; until a message on the stop topic."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {mode}")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, type TEXT NOT NULL,"
        " occurred_at TEXT, received_at TEXT NOT NULL, payload TEXT NOT NULL)"
    )
    stop = threading.Event()
    handled = 0
    stop_topic = f"bench/rt/{mode.lower()}/stop"

    def on_message(message: mqtt.MQTTMessage, _stamp: float) -> None:
        nonlocal handled
        if message.topic == stop_topic:
            stop.set()
            return
        event = EndedEvent.model_validate_json(message.payload)
        occurred = None if event.timestamp is None else event.timestamp.isoformat()
        conn.execute("BEGIN")
        conn.execute(
            "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)",
            (event.event_id, event.type, occurred, wall_clock().isoformat(), message.payload),
        )
        conn.execute("COMMIT")
        peer.publish(_reply_topic(mode), event.event_id.encode())
        handled += 1

    client_id = f"bench-bare-{mode.lower()}-{os.getpid()}"
    with Peer(host, port, client_id=client_id, on_message=on_message) as peer:
        peer.subscribe(_request_topic(mode))
        peer.subscribe(stop_topic)
        ready()
        stop.wait()
    conn.close()
    return {"handled": handled}


# -- the harness ----------------------------------------------------------------------------------


class Arrivals:
    """Stamps the first arrival of each awaited key (a reminder id, a request id)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._arrived: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.kinds: dict[str, int] = {}

    def on_message(self, message: mqtt.MQTTMessage, stamp: float) -> None:
        if message.topic == NOTIFY_TOPIC:
            body = json.loads(message.payload)
            key = str(body.get("reminder_id"))
            kind = str(body.get("kind"))
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        else:
            key = message.payload.decode()
        with self._changed:
            self.counts[key] = self.counts.get(key, 0) + 1
            self._arrived.setdefault(key, stamp)
            self._changed.notify_all()

    def wait(self, key: str, timeout: float = REPLY_TIMEOUT_S) -> float | None:
        with self._changed:
            self._changed.wait_for(lambda: key in self._arrived, timeout)
            return self._arrived.get(key)


class Harness:
    """The publisher and the subscriber, both paho with TCP_NODELAY, and what each measured."""

    def __init__(self, broker: MosquittoBroker, reader: StoreReader, tag: str) -> None:
        self.reader = reader
        self.tag = tag
        self.arrivals = Arrivals()
        tag_id = f"{tag}-{os.getpid()}"
        self.publisher = Peer(broker.host, broker.port, client_id=f"bench-lat-pub-{tag_id}")
        self.subscriber = Peer(
            broker.host,
            broker.port,
            client_id=f"bench-lat-sub-{tag_id}",
            on_message=self.arrivals.on_message,
        )
        self.daemon: list[dict[str, Any]] = []
        self.bare: dict[str, list[float]] = {mode: [] for mode in BARE_MODES}
        self.timeouts: dict[str, int] = {"needlecare": 0, **dict.fromkeys(BARE_MODES, 0)}

    def __enter__(self) -> "Harness":
        self.publisher.__enter__()
        self.subscriber.__enter__()
        self.subscriber.subscribe(NOTIFY_TOPIC)
        for mode in BARE_MODES:
            self.subscriber.subscribe(_reply_topic(mode))
        return self

    def __exit__(self, *exc: object) -> None:
        self.subscriber.__exit__()
        self.publisher.__exit__()

    def session(self, number: int, profiles: int, *, record: bool) -> None:
        """One session through the daemon: start, wait until stored, end, wait for soothe."""
        device, profile = f"lat{number:05d}", f"lp{number % profiles:02d}"
        topic = f"needlecare/device/{device}/event"
        started = f"{self.tag}-s{number}"
        session = session_id_for(started)
        body = {"event_id": started, "type": "session_started", "profile": profile}
        self.publisher.acked_at(self.publisher.publish(topic, pad_json(body, EVENT_BYTES)))
        self.reader.wait_until(
            "SELECT count(*) FROM sessions WHERE id = ?",
            lambda n: n == 1,
            params=(session,),
            poll_s=0.001,
        )
        time.sleep(PAUSE_S)
        expected = reminder_id(session, "soothe")
        ended: dict[str, Any] = {"event_id": f"{self.tag}-e{number}", "type": "session_ended"}
        ended |= {"profile": profile, "passes": 4, "duration_s": 900}
        payload = pad_json(ended, EVENT_BYTES)
        sent_wall, sent = wall_clock(), now()
        puback = self.publisher.acked_at(self.publisher.publish(topic, payload))
        arrived = self.arrivals.wait(expected)
        if not record:
            return
        if arrived is None:
            self.timeouts["needlecare"] += 1
            return
        self.daemon.append(
            {
                "session_id": session,
                "reminder_id": expected,
                "sent_wall": sent_wall,
                "from_publish_s": arrived - sent,
                "from_puback_s": arrived - puback,
            }
        )

    def round_trip(self, mode: str, number: int, *, record: bool) -> None:
        key = f"{self.tag}-{mode.lower()}{number}"
        body = {"event_id": key, "type": "session_ended", "passes": 4, "duration_s": 900}
        sent = now()
        self.publisher.publish(_request_topic(mode), pad_json(body, EVENT_BYTES))
        arrived = self.arrivals.wait(key)
        if not record:
            return
        if arrived is None:
            self.timeouts[mode] += 1
            return
        self.bare[mode].append(arrived - sent)


# -- where the daemon's time goes ---------------------------------------------------------------


def _stamp(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00"))


def breakdown(daemon: Daemon, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """From the daemon's log: publish -> session recorded -> reminder delivered -> receipt (ms)."""
    recorded: dict[str, datetime] = {}
    delivered: dict[str, datetime] = {}
    for entry in daemon.log_events():
        if entry.get("event") == "session_recorded" and entry.get("status") == "completed":
            recorded.setdefault(str(entry.get("session_id")), _stamp(entry))
        elif entry.get("event") == "reminder_delivered":
            delivered.setdefault(str(entry.get("reminder_id")), _stamp(entry))
    stages: dict[str, list[float]] = {"to_recorded": [], "to_delivered": [], "to_receipt": []}
    for sample in samples:
        at_recorded = recorded.get(sample["session_id"])
        at_delivered = delivered.get(sample["reminder_id"])
        if at_recorded is None or at_delivered is None:
            continue
        sent: datetime = sample["sent_wall"]
        total = sample["from_publish_s"]
        stages["to_recorded"].append((at_recorded - sent).total_seconds())
        stages["to_delivered"].append((at_delivered - at_recorded).total_seconds())
        stages["to_receipt"].append(total - (at_delivered - sent).total_seconds())
    return {name: percentiles(values) for name, values in stages.items() if values}


# -- the run -----------------------------------------------------------------------------------


def _start_responders(stack: list[Child], broker: MosquittoBroker, work: Path) -> dict[str, Child]:
    children = {}
    for mode in BARE_MODES:
        db = str(work / f"bare-{mode.lower()}.db")
        child = Child(bare_responder, broker.host, broker.port, db, mode).start()
        stack.append(child)
        children[mode] = child
    for child in children.values():
        child.wait_ready()
    return children


def _stop_responders(broker: MosquittoBroker, children: dict[str, Child]) -> dict[str, Any]:
    handled = {}
    with Peer(broker.host, broker.port, client_id=f"bench-lat-stop-{os.getpid()}") as peer:
        for mode, child in children.items():
            peer.acked_at(peer.publish(f"bench/rt/{mode.lower()}/stop", b"stop"))
            handled[mode] = child.result()["handled"]
    return handled


def _rounds(harness: Harness, sessions: int, *, profiles: int, rounds: int, warmup: int) -> None:
    for number in range(warmup):
        harness.session(sessions + number, profiles, record=False)
        for mode in BARE_MODES:
            harness.round_trip(mode, sessions + number, record=False)
    per_round = -(-sessions // rounds)
    for first in range(0, sessions, per_round):
        numbers = range(first, min(first + per_round, sessions))
        progress(f"latency: sessions {first}..{numbers[-1]}")
        for number in numbers:
            harness.session(number, profiles, record=True)
            time.sleep(PAUSE_S)
        for mode in BARE_MODES:
            for number in numbers:
                harness.round_trip(mode, number, record=True)
                time.sleep(PAUSE_S)


def run(
    sessions: int,
    *,
    profiles: int = DEFAULT_PROFILES,
    rounds: int = DEFAULT_ROUNDS,
    warmup: int = DEFAULT_WARMUP,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """The three latency series, as the JSON report."""
    started_at = wall_clock()
    source_before = source_state()
    tag = f"lat{os.getpid()}"
    children: list[Child] = []
    with workspace(workdir, "bench-latency-") as work, running_broker(work / "broker") as broker:
        config = daemon_config(
            broker,
            work / "needlecare.db",
            mqtt={"client_id": f"needlecare-{tag}"},
            profiles={f"lp{p:02d}": {"timezone": "Europe/Berlin"} for p in range(profiles)},
            mirrors={"hallway": {}},
            protocol=only_soothe(["mirror"]),
        )
        daemon = Daemon(work, config).start()
        try:
            responders = _start_responders(children, broker, work)
            wait_online(broker)
            wait_idle(daemon.pid)
            load_before = load_average()
            with wait_for_store(daemon.db) as reader, Harness(broker, reader, tag) as harness:
                _rounds(harness, sessions, profiles=profiles, rounds=rounds, warmup=warmup)
            handled = _stop_responders(broker, responders)
            exit_code = daemon.stop()
        finally:
            daemon.stop()
            for child in children:
                child.kill()
        split = breakdown(daemon, harness.daemon)
        machine_info = machine(work, source_before=source_before)
    return _report(
        harness,
        started_at=started_at,
        machine_info=machine_info,
        settings={
            "sessions": sessions,
            "profiles": profiles,
            "rounds": rounds,
            "warmup": warmup,
            "pause_ms": PAUSE_S * 1e3,
        },
        extra={
            "breakdown_ms": split,
            "bare_handled": handled,
            "exit_code": exit_code,
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
    )


def _report(
    harness: Harness,
    *,
    started_at: datetime,
    machine_info: dict[str, Any],
    settings: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    if not harness.daemon or not all(harness.bare.values()):
        raise BenchError(f"no latency samples; timeouts {harness.timeouts}")
    series = {
        "needlecare_from_publish": percentiles([s["from_publish_s"] for s in harness.daemon]),
        "needlecare_from_puback": percentiles([s["from_puback_s"] for s in harness.daemon]),
        **{f"bare_{mode.lower()}": percentiles(values) for mode, values in harness.bare.items()},
    }
    ratio = series["needlecare_from_publish"]["p99"] / series["bare_full"]["p99"]
    rounds = settings["rounds"]
    per_round = -(-len(harness.daemon) // rounds)
    drift = [
        percentiles([s["from_publish_s"] for s in harness.daemon[i : i + per_round]])["p50"]
        for i in range(0, len(harness.daemon), per_round)
    ]
    # Each round pairs the daemon's sessions with the bare FULL round trips right after
    # them: one p99 ratio per round, and the median of those is the figure.
    full = harness.bare["FULL"]
    by_round = []
    for i in range(0, len(harness.daemon), per_round):
        ours = percentiles([s["from_publish_s"] for s in harness.daemon[i : i + per_round]])
        bare = percentiles(full[i : i + per_round])
        by_round.append(
            {"n": ours["n"], "needlecare_p99": ours["p99"], "bare_full_p99": bare["p99"],
             "ratio": ours["p99"] / bare["p99"]}
        )  # fmt: skip
    median_ratio = statistics.median(r["ratio"] for r in by_round)
    soothes = [harness.arrivals.counts.get(s["reminder_id"], 0) for s in harness.daemon]
    return {
        "bench": "latency",
        "started_at": started_at.isoformat(),
        "finished_at": wall_clock().isoformat(),
        "machine": machine_info,
        **settings,
        "series_ms": series,
        "p99_ratio": ratio,
        "p50_ratio": series["needlecare_from_publish"]["p50"] / series["bare_full"]["p50"],
        "needlecare_p50_by_round_ms": drift,
        "p99_by_round_ms": by_round,
        "p99_ratio_median_of_rounds": median_ratio,
        "target_p99_ratio": TARGET_P99_RATIO,
        "target_met": median_ratio <= TARGET_P99_RATIO,
        "timeouts": harness.timeouts,
        "notification_kinds": harness.arrivals.kinds,
        "soothe_per_session": {"min": min(soothes), "max": max(soothes)},
        **extra,
    }


# -- output ---------------------------------------------------------------------------------------


_LABELS = {
    "needlecare_from_publish": "needlecare: end published -> soothe received",
    "needlecare_from_puback": "needlecare: end PUBACK -> soothe received",
    "bare_full": "bare: publish -> validate, insert, commit FULL -> reply",
    "bare_normal": "bare: same with synchronous=NORMAL",
}
_STAGES = {
    "to_recorded": "publish -> session recorded (MQTT in, inbox, validate)",
    "to_delivered": "recorded -> reminder delivered (plan, deliver, outbox: same transaction)",
    "to_receipt": "delivered -> received (commit, publish, broker, subscriber)",
}


def _row(label: str, figures: dict[str, float]) -> list[str]:
    keys = ("p50", "p90", "p99", "max")
    return [label, f"{figures['n']:,}", *(fmt(figures[key], 2) for key in keys)]


def render(report: dict[str, Any]) -> str:
    headers = ("ms", "n", "p50", "p90", "p99", "max")
    series = report["series_ms"]
    ratio, target = report["p99_ratio"], report["target_p99_ratio"]
    stages = report["breakdown_ms"]
    lines = [
        f"Latency: {report['sessions']:,} sessions over {report['profiles']} profiles,"
        f" in {report['rounds']} rounds alternating with the bare round trips",
        table(headers, [_row(_LABELS[name], figures) for name, figures in series.items()]),
        "",
        f"needlecare p99 / bare FULL p99, all samples: {ratio:.2f}x;"
        f" p50 ratio {report['p50_ratio']:.2f}x;"
        f" timeouts {report['timeouts']}; notifications by kind {report['notification_kinds']}",
        "needlecare p50 by round (ms): "
        + ", ".join(f"{p50:.2f}" for p50 in report["needlecare_p50_by_round_ms"]),
        "",
        "p99 by paired round (ms):",
        table(
            ("round", "n", "needlecare p99", "bare FULL p99", "ratio"),
            [
                [
                    str(n + 1),
                    str(r["n"]),
                    fmt(r["needlecare_p99"], 2),
                    fmt(r["bare_full_p99"], 2),
                    fmt(r["ratio"], 2),
                ]
                for n, r in enumerate(report["p99_by_round_ms"])
            ],
        ),
        f"median of the rounds' p99 ratios: {report['p99_ratio_median_of_rounds']:.2f}x"
        f" (target <= {target:g}x: {verdict(report['target_met'])})",
        "",
        "Where the daemon's time goes (its log timestamps):",
        table(headers, [_row(_STAGES[name], figures) for name, figures in stages.items()]),
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "bench.latency", __doc__, out=DEFAULT_OUT, workdir_help="keep stores and logs here"
    )
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS)
    parser.add_argument("--profiles", type=int, default=DEFAULT_PROFILES)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, write the JSON; exit 1 if a prompt never came or came twice."""
    args = parse_args(argv)
    if min(args.sessions, args.profiles, args.rounds) < 1 or args.warmup < 0:
        raise SystemExit("--sessions, --profiles and --rounds must be positive")
    report = run(
        args.sessions,
        profiles=args.profiles,
        rounds=args.rounds,
        warmup=args.warmup,
        workdir=args.workdir,
    )
    finish(report, args.out, render)
    once = report["soothe_per_session"] == {"min": 1, "max": 1}
    return 0 if once and not any(report["timeouts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
