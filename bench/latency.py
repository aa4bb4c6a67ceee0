"""Latency: a session's end to its ``soothe`` prompt on the mirror, against a bare round trip.

Bare: paho, pydantic, SQLite insert + commit (FULL or NORMAL), a reply, in rounds
alternating with the daemon's on the same broker. Each round's p99 is set beside the
bare FULL p99 of the round trips right after it; target: their median <= 1.5.
"""

import json
import os
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bench.harness.daemon import (
    Daemon,
    Sessions,
    StoreReader,
    log_stamp,
    only_soothe,
    running_daemon,
    wait_for_store,
)
from bench.harness.mqtt import Address, Peer, pad_json
from bench.harness.proc import Child, wait_idle
from bench.harness.report import (
    PCT_HEADERS,
    Bench,
    BenchError,
    fmt,
    load_average,
    now,
    pct_row,
    percentiles,
    progress,
    table,
    verdict,
    wall_clock,
)

PAUSE_S = 0.005  # between measurements, and after a start is committed
EVENT_BYTES, TARGET_P99_RATIO = 200, 1.5
NOTIFY_TOPIC = "needlecare/mirror/hallway/notify"
BARE_MODES = ("FULL", "NORMAL")


def _topic(mode: str, what: str) -> str:
    return f"bench/rt/{mode.lower()}/{what}"


class EndedEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    event_id: str = Field(min_length=1, max_length=128)
    type: Literal["session_ended"]
    timestamp: AwareDatetime | None = Field(default=None, strict=False)
    session_ref: str | None = None
    passes: int | None = None
    duration_s: int | None = None


def bare_responder(broker: Address, db: str, mode: str, *, ready: Callable[[], None]) -> Any:
    """Validate, insert + commit, reply; until a message on the stop topic."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {mode}")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, type TEXT NOT NULL,"
        " occurred_at TEXT, received_at TEXT NOT NULL, payload TEXT NOT NULL)"
    )
    stop, handled = threading.Event(), [0]

    def on_message(message: Any, _stamp: float) -> None:
        if message.topic == _topic(mode, "stop"):
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
        peer.publish(_topic(mode, "reply"), event.event_id.encode())
        handled[0] += 1

    with Peer(broker, f"bench-bare-{mode.lower()}-{os.getpid()}", on_message=on_message) as peer:
        peer.subscribe(_topic(mode, "request"), _topic(mode, "stop"))
        ready()
        stop.wait()
    conn.close()
    return {"handled": handled[0]}


class Harness:
    def __init__(self, daemon: Daemon, reader: StoreReader, tag: str, profiles: int) -> None:
        self.tag = tag
        self._changed = threading.Condition()
        self.arrived: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.kinds: dict[str, int] = {}
        self.publisher = Peer(daemon.broker, f"bench-lat-pub-{tag}")
        self.subscriber = Peer(daemon.broker, f"bench-lat-sub-{tag}", on_message=self.on_message)
        self.sessions = Sessions(self.publisher, reader, tag, device=lambda n: f"lat{n:05d}",
                                 profile=lambda n: f"lp{n % profiles:02d}")  # fmt: skip
        self.daemon: list[dict[str, Any]] = []
        self.bare: dict[str, list[float]] = {mode: [] for mode in BARE_MODES}
        self.timeouts: dict[str, int] = {"needlecare": 0, **dict.fromkeys(BARE_MODES, 0)}

    def __enter__(self) -> "Harness":
        self.publisher.__enter__()
        self.subscriber.__enter__().subscribe(
            NOTIFY_TOPIC, *(_topic(mode, "reply") for mode in BARE_MODES)
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.subscriber.__exit__()
        self.publisher.__exit__()

    def on_message(self, message: Any, stamp: float) -> None:
        """Stamps the first arrival of each key (a reminder id, a request id)."""
        key = message.payload.decode()
        if message.topic == NOTIFY_TOPIC:
            body = json.loads(message.payload)
            key, kind = str(body.get("reminder_id")), str(body.get("kind"))
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        with self._changed:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.arrived.setdefault(key, stamp)
            self._changed.notify_all()

    def wait(self, key: str, timeout: float = 10.0) -> float | None:
        with self._changed:
            self._changed.wait_for(lambda: key in self.arrived, timeout)
            return self.arrived.get(key)

    def session(self, number: int, *, record: bool) -> None:
        """One session through the daemon: start, wait until stored, end, wait for soothe."""
        self.sessions.start([number], poll_s=0.001)
        time.sleep(PAUSE_S)
        sent_wall, (sent, puback) = wall_clock(), self.sessions.end([number])
        arrived = self.wait(self.sessions.soothe(number))
        if record and arrived is None:
            self.timeouts["needlecare"] += 1
        elif record:
            self.daemon.append({"session_id": self.sessions.session_id(number),
                                "reminder_id": self.sessions.soothe(number),
                                "sent_wall": sent_wall, "from_publish_s": arrived - sent,
                                "from_puback_s": arrived - puback})  # fmt: skip

    def round_trip(self, mode: str, number: int, *, record: bool) -> None:
        key = f"{self.tag}-{mode.lower()}{number}"
        body = {"event_id": key, "type": "session_ended", "passes": 4, "duration_s": 900}
        sent = now()
        self.publisher.publish(_topic(mode, "request"), pad_json(body, EVENT_BYTES))
        arrived = self.wait(key)
        if record and arrived is None:
            self.timeouts[mode] += 1
        elif record:
            self.bare[mode].append(arrived - sent)


def breakdown(daemon: Daemon, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """From the daemon's log: publish -> session recorded -> reminder delivered -> receipt (ms)."""
    recorded: dict[str, datetime] = {}
    delivered: dict[str, datetime] = {}
    for entry in daemon.log_events("session_recorded"):
        if entry.get("status") == "completed":
            recorded.setdefault(str(entry.get("session_id")), log_stamp(entry))
    for entry in daemon.log_events("reminder_delivered"):
        delivered.setdefault(str(entry.get("reminder_id")), log_stamp(entry))
    stages: dict[str, list[float]] = {"to_recorded": [], "to_delivered": [], "to_receipt": []}
    for sample in samples:
        at_recorded = recorded.get(sample["session_id"])
        at_delivered = delivered.get(sample["reminder_id"])
        if at_recorded is None or at_delivered is None:
            continue
        sent: datetime = sample["sent_wall"]
        stages["to_recorded"].append((at_recorded - sent).total_seconds())
        stages["to_delivered"].append((at_delivered - at_recorded).total_seconds())
        stages["to_receipt"].append(
            sample["from_publish_s"] - (at_delivered - sent).total_seconds()
        )
    return {name: percentiles(values) for name, values in stages.items() if values}


def rounds(harness: Harness, args: Any) -> None:
    sessions = args.sessions
    for number in range(sessions, sessions + args.warmup):
        harness.session(number, record=False)
        for mode in BARE_MODES:
            harness.round_trip(mode, number, record=False)
    per_round = -(-sessions // args.rounds)
    for first in range(0, sessions, per_round):
        numbers = range(first, min(first + per_round, sessions))
        progress(f"latency: sessions {first}..{numbers[-1]}")
        for number in numbers:
            harness.session(number, record=True)
            time.sleep(PAUSE_S)
        for mode in BARE_MODES:
            for number in numbers:
                harness.round_trip(mode, number, record=True)
                time.sleep(PAUSE_S)


def run(args: Any, work: Path) -> dict[str, Any]:
    if min(args.sessions, args.profiles, args.rounds) < 1 or args.warmup < 0:
        raise SystemExit("--sessions, --profiles and --rounds must be positive")
    tag = f"lat{os.getpid()}"
    sections = {
        "mqtt": {"client_id": f"needlecare-{tag}"},
        "profiles": {f"lp{p:02d}": {"timezone": "Europe/Berlin"} for p in range(args.profiles)},
        "mirrors": {"hallway": {}},
        "protocol": only_soothe(["mirror"]),
    }
    with running_daemon(work, **sections) as daemon:
        address = Address(daemon.broker.host, daemon.broker.port)
        children = {m: Child(bare_responder, address, str(work / f"bare-{m.lower()}.db"), m).start()
                    for m in BARE_MODES}  # fmt: skip
        try:
            for child in children.values():
                child.wait_ready()
            wait_idle(daemon.pid)
            load_before = load_average()
            with (
                wait_for_store(daemon.db) as reader,
                Harness(daemon, reader, tag, args.profiles) as harness,
            ):
                rounds(harness, args)
            handled = {}
            with Peer(daemon.broker, f"bench-lat-stop-{tag}") as peer:
                for mode, child in children.items():
                    peer.send([(_topic(mode, "stop"), b"stop")])
                    handled[mode] = child.result()["handled"]
            exit_code = daemon.stop()
        finally:
            for child in children.values():
                child.kill()
    settings = {"sessions": args.sessions, "profiles": args.profiles, "rounds": args.rounds,
                "warmup": args.warmup, "pause_ms": PAUSE_S * 1e3}  # fmt: skip
    extra = {"breakdown_ms": breakdown(daemon, harness.daemon), "bare_handled": handled,
             "exit_code": exit_code, "load_average_before": load_before,
             "load_average_after": load_average()}  # fmt: skip
    return {**settings, **figures(harness, args.rounds), **extra}


def figures(harness: Harness, rounds: int) -> dict[str, Any]:
    """The series, the per-round p99 ratios and their median, the once-only checks."""
    if not harness.daemon or not all(harness.bare.values()):
        raise BenchError(f"no latency samples; timeouts {harness.timeouts}")
    ours = [s["from_publish_s"] for s in harness.daemon]
    series = {
        "needlecare_from_publish": percentiles(ours),
        "needlecare_from_puback": percentiles([s["from_puback_s"] for s in harness.daemon]),
        **{f"bare_{mode.lower()}": percentiles(values) for mode, values in harness.bare.items()},
    }
    # Each round pairs the daemon's sessions with the bare FULL round trips right after them.
    per_round, full = -(-len(ours) // rounds), harness.bare["FULL"]
    by_round = []
    for i in range(0, len(ours), per_round):
        mine, bare = percentiles(ours[i : i + per_round]), percentiles(full[i : i + per_round])
        by_round.append({"n": mine["n"], "needlecare_p99": mine["p99"],
                         "bare_full_p99": bare["p99"], "ratio": mine["p99"] / bare["p99"],
                         "p50": mine["p50"]})  # fmt: skip
    median_ratio = statistics.median(r["ratio"] for r in by_round)
    soothes = [harness.counts.get(s["reminder_id"], 0) for s in harness.daemon]
    return {"series_ms": series,
            "p99_ratio": series["needlecare_from_publish"]["p99"] / series["bare_full"]["p99"],
            "p50_ratio": series["needlecare_from_publish"]["p50"] / series["bare_full"]["p50"],
            "needlecare_p50_by_round_ms": [r.pop("p50") for r in by_round],
            "p99_by_round_ms": by_round, "p99_ratio_median_of_rounds": median_ratio,
            "target_p99_ratio": TARGET_P99_RATIO, "target_met": median_ratio <= TARGET_P99_RATIO,
            "timeouts": harness.timeouts, "notification_kinds": harness.kinds,
            "soothe_per_session": {"min": min(soothes), "max": max(soothes)}}  # fmt: skip


LABELS = {
    "needlecare_from_publish": "needlecare: end published -> soothe received",
    "needlecare_from_puback": "needlecare: end PUBACK -> soothe received",
    "bare_full": "bare: publish -> validate, insert, commit FULL -> reply",
    "bare_normal": "bare: same with synchronous=NORMAL",
    "to_recorded": "publish -> session recorded (MQTT in, inbox, validate)",
    "to_delivered": "recorded -> reminder delivered (plan, deliver, outbox: same transaction)",
    "to_receipt": "delivered -> received (commit, publish, broker, subscriber)",
}


def render(report: dict[str, Any]) -> str:
    headers = PCT_HEADERS
    row = lambda name, f: pct_row(LABELS[name], f, 2)  # noqa: E731
    rounds = [[str(n + 1), str(r["n"]), fmt(r["needlecare_p99"], 2), fmt(r["bare_full_p99"], 2),
               fmt(r["ratio"], 2)] for n, r in enumerate(report["p99_by_round_ms"])]  # fmt: skip
    return "\n".join([
        f"Latency: {report['sessions']:,} sessions over {report['profiles']} profiles,"
        f" in {report['rounds']} rounds alternating with the bare round trips",
        table(headers, [row(name, f) for name, f in report["series_ms"].items()]),
        "",
        f"needlecare p99 / bare FULL p99, all samples: {report['p99_ratio']:.2f}x;"
        f" p50 ratio {report['p50_ratio']:.2f}x; timeouts {report['timeouts']};"
        f" notifications by kind {report['notification_kinds']}",
        "needlecare p50 by round (ms): "
        + ", ".join(f"{p50:.2f}" for p50 in report["needlecare_p50_by_round_ms"]),
        "",
        "p99 by paired round (ms):",
        table(("round", "n", "needlecare p99", "bare FULL p99", "ratio"), rounds),
        f"median of the rounds' p99 ratios: {report['p99_ratio_median_of_rounds']:.2f}x"
        f" (target <= {report['target_p99_ratio']:g}x: {verdict(report['target_met'])})",
        "",
        "Where the daemon's time goes (its log timestamps):",
        table(headers, [row(name, f) for name, f in report["breakdown_ms"].items()]),
    ])  # fmt: skip


OPTIONS = {"--sessions": (int, 2000, "sessions through the daemon"),
           "--profiles": (int, 20, "profiles the sessions take turns over"),
           "--rounds": (int, 5, "paired rounds (400 sessions a round at the default 2,000)"),
           "--warmup": (int, 20, "unrecorded sessions and round trips first")}  # fmt: skip
BENCH = Bench("latency", __doc__, run, render, options=OPTIONS,
              ok=lambda r: r["soothe_per_session"] == {"min": 1, "max": 1}
              and not any(r["timeouts"].values()))  # fmt: skip
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
