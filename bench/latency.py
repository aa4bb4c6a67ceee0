"""Latency: a session's end to its ``soothe`` prompt on the mirror, against a bare round trip.

Bare: paho, pydantic, SQLite insert + commit (FULL or NORMAL), a reply, on the same
broker. Pairs interleave: session n through the daemon, then bare round trips n (FULL,
NORMAL), so both sides of a pair meet the same load. Each round's p99 is set beside the
bare FULL p99 of the same round; target: their median <= 1.5.
"""

import json
import os
import sqlite3
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bench.harness.daemon import PAUSE_S, Sessions, only_soothe, running_daemon
from bench.harness.daemon import wait_for_store as store_of
from bench.harness.mqtt import Address, Peer, pad_json
from bench.harness.proc import Child, wait_idle
from bench.harness.report import (
    Bench,
    BenchError,
    Stamps,
    columns,
    fmt,
    load_average,
    now,
    pct_table,
    percentiles,
    positive,
    progress,
    verdict,
    wall_clock,
)

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


class Pairs:
    """Session n through the daemon, then the bare round trips n; what each took."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions, self.arrived, self.kinds = sessions, Stamps(), Counter[str]()
        self.daemon: list[dict[str, Any]] = []
        self.bare: dict[str, list[float]] = {mode: [] for mode in BARE_MODES}
        self.timeouts = {"needlecare": 0, **dict.fromkeys(BARE_MODES, 0)}

    def on_message(self, message: Any, stamp: float) -> None:
        """Stamps each soothe by its reminder id, each bare reply by its request id."""
        key = message.payload.decode()
        if message.topic == NOTIFY_TOPIC:
            body = json.loads(message.payload)
            key = str(body.get("reminder_id"))
            self.kinds[str(body.get("kind"))] += 1
        self.arrived.add(key, stamp)

    def round_trip(self, mode: str, number: int) -> float | None:
        key = f"{self.sessions.tag}-{mode.lower()}{number}"
        body = {"event_id": key, "type": "session_ended", "passes": 4, "duration_s": 900}
        sent = now()
        self.sessions.peer.publish(_topic(mode, "request"), pad_json(body, EVENT_BYTES))
        arrived = self.arrived.first([key], 10.0)
        return None if arrived is None else arrived[0] - sent

    def pair(self, number: int, *, record: bool) -> None:
        sample = self.sessions.prompt(number, self.arrived)
        time.sleep(PAUSE_S)
        bare = {}
        for mode in BARE_MODES:
            bare[mode] = self.round_trip(mode, number)
            time.sleep(PAUSE_S)
        if not record:
            return
        for name, value in {"needlecare": sample, **bare}.items():
            if value is None:
                self.timeouts[name] += 1
            elif name == "needlecare":
                self.daemon.append(value)
            else:
                self.bare[name].append(value)


def drive(pairs: Pairs, args: Any) -> None:
    """The warm-up pairs, then --rounds rounds of pairs, all recorded."""
    for number in range(args.sessions, args.sessions + args.warmup):
        pairs.pair(number, record=False)
    per_round = -(-args.sessions // args.rounds)
    for first in range(0, args.sessions, per_round):
        numbers = range(first, min(first + per_round, args.sessions))
        progress(f"latency: sessions {first}..{numbers[-1]}, each with its bare round trips")
        for number in numbers:
            pairs.pair(number, record=True)


def run(args: Any, work: Path) -> dict[str, Any]:
    tag = f"lat{os.getpid()}"
    sections = {
        "mqtt": {"client_id": f"needlecare-{tag}"},
        "profiles": {f"lp{p:02d}": {"timezone": "Europe/Berlin"} for p in range(args.profiles)},
        "mirrors": {"hallway": {}},
        "protocol": only_soothe(["mirror"]),
    }
    with running_daemon(work, **sections) as daemon:
        address = Address(daemon.broker.host, daemon.broker.port)
        children = {
            mode: Child(bare_responder, address, str(work / f"bare-{mode.lower()}.db"), mode)
            for mode in BARE_MODES
        }
        try:
            for child in children.values():
                child.start().wait_ready()
            wait_idle(daemon.pid)
            load_before = load_average()
            with (
                store_of(daemon.db) as reader,
                Peer(daemon.broker, f"bench-lat-pub-{tag}") as publisher,
            ):
                device, profile = lambda n: f"lat{n:05d}", lambda n: f"lp{n % args.profiles:02d}"
                pairs = Pairs(Sessions(publisher, reader, tag, profile=profile, device=device))
                with Peer(
                    daemon.broker, f"bench-lat-sub-{tag}", on_message=pairs.on_message
                ) as sub:
                    sub.subscribe(NOTIFY_TOPIC, *(_topic(mode, "reply") for mode in BARE_MODES))
                    drive(pairs, args)
                handled = {}
                for mode, child in children.items():
                    publisher.send([(_topic(mode, "stop"), b"stop")])
                    handled[mode] = child.result()["handled"]
            exit_code = daemon.stop()
        finally:
            for child in children.values():
                child.kill()
    marks = {"to_recorded": "session_recorded", "to_delivered": "reminder_delivered"}
    return {
        "sessions": args.sessions,
        "profiles": args.profiles,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "pause_ms": PAUSE_S * 1e3,
        **figures(pairs, args.rounds),
        "breakdown_ms": daemon.split(pairs.daemon, marks, "to_receipt"),
        "bare_handled": handled,
        "exit_code": exit_code,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def figures(pairs: Pairs, rounds: int) -> dict[str, Any]:
    """The series, the per-round p99 ratios and their median, the once-only checks."""
    if not pairs.daemon or not all(pairs.bare.values()):
        raise BenchError(f"no latency samples; timeouts {pairs.timeouts}")
    ours, full = [s["from_publish_s"] for s in pairs.daemon], pairs.bare["FULL"]
    series = {
        "needlecare_from_publish": percentiles(ours),
        "needlecare_from_puback": percentiles([s["from_puback_s"] for s in pairs.daemon]),
        **{f"bare_{mode.lower()}": percentiles(values) for mode, values in pairs.bare.items()},
    }
    # Each round's sessions beside the bare FULL round trips paired with them.
    per_round, p50s, by_round = -(-len(ours) // rounds), [], []
    for i in range(0, len(ours), per_round):
        mine, bare = percentiles(ours[i : i + per_round]), percentiles(full[i : i + per_round])
        p50s.append(mine["p50"])
        by_round.append({"n": mine["n"], "needlecare_p99": mine["p99"]})
        by_round[-1] |= {"bare_full_p99": bare["p99"], "ratio": mine["p99"] / bare["p99"]}
    median_ratio = statistics.median(r["ratio"] for r in by_round)
    soothes = [len(pairs.arrived.seen.get(s["reminder_id"], ())) for s in pairs.daemon]
    return {
        "series_ms": series,
        "p99_ratio": series["needlecare_from_publish"]["p99"] / series["bare_full"]["p99"],
        "p50_ratio": series["needlecare_from_publish"]["p50"] / series["bare_full"]["p50"],
        "needlecare_p50_by_round_ms": p50s,
        "p99_by_round_ms": by_round,
        "p99_ratio_median_of_rounds": median_ratio,
        "target_p99_ratio": TARGET_P99_RATIO,
        "target_met": median_ratio <= TARGET_P99_RATIO,
        "timeouts": pairs.timeouts,
        "notification_kinds": dict(pairs.kinds),
        "soothe_per_session": {"min": min(soothes), "max": max(soothes)},
    }


LABELS = {
    "needlecare_from_publish": "needlecare: end published -> soothe received",
    "needlecare_from_puback": "needlecare: end PUBACK -> soothe received",
    "bare_full": "bare: publish -> validate, insert, commit FULL -> reply",
    "bare_normal": "bare: same with synchronous=NORMAL",
    "to_recorded": "publish -> session recorded (MQTT in, inbox, validate)",
    "to_delivered": "recorded -> reminder delivered (plan, deliver, outbox: same transaction)",
    "to_receipt": "delivered -> received (commit, publish, broker, subscriber)",
}
ROUNDS = {
    "round": lambda r: r["round"],
    "n": lambda r: r["n"],
    "needlecare p99": lambda r: fmt(r["needlecare_p99"], 2),
    "bare FULL p99": lambda r: fmt(r["bare_full_p99"], 2),
    "ratio": lambda r: fmt(r["ratio"], 2),
}


TEXT = """\
Latency: {sessions:,} sessions over {profiles} profiles, in {rounds} rounds alternating with \
the bare round trips
{series}

needlecare p99 / bare FULL p99, all samples: {p99_ratio:.2f}x; p50 ratio {p50_ratio:.2f}x; \
timeouts {timeouts}; notifications by kind {notification_kinds}
needlecare p50 by round (ms): {p50s}

p99 by paired round (ms):
{by_round}
median of the rounds' p99 ratios: {p99_ratio_median_of_rounds:.2f}x \
(target <= {target_p99_ratio:g}x: {verdict})

Where the daemon's time goes (its log timestamps):
{breakdown}"""


def render(report: dict[str, Any]) -> str:
    labelled = lambda key: [(LABELS[name], f) for name, f in report[key].items()]  # noqa: E731
    by_round = [{"round": n + 1, **r} for n, r in enumerate(report["p99_by_round_ms"])]
    tables = {"series": pct_table(labelled("series_ms"), 2), "by_round": columns(ROUNDS, by_round)}
    tables["breakdown"] = pct_table(labelled("breakdown_ms"), 2)
    p50s = ", ".join(f"{p50:.2f}" for p50 in report["needlecare_p50_by_round_ms"])
    return TEXT.format_map(
        report | tables | {"p50s": p50s, "verdict": verdict(report["target_met"])}
    )


OPTIONS = {
    "--sessions": (positive, 2000, "sessions through the daemon"),
    "--profiles": (positive, 20, "profiles the sessions take turns over"),
    "--rounds": (positive, 5, "paired rounds (400 sessions a round at the default 2,000)"),
    "--warmup": (int, 20, "unrecorded sessions and round trips first"),
}
BENCH = Bench(
    "latency",
    __doc__,
    run,
    render,
    options=OPTIONS,
    ok=lambda r: (
        r["soothe_per_session"] == {"min": 1, "max": 1} and not any(r["timeouts"].values())
    ),
)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
