"""Process start to the retained ``online``: the daemon beside a bare Python + paho client.

Each round spawns, in turn, a bare client (``python -c``: import paho, connect with
MQTT 5, publish a retained ``online`` with QoS 1) and ``needlecare run`` on an
existing store (a restart, the case that matters on a Raspberry Pi after a power
cut), and times from the spawn to the moment a subscriber already connected to the
same broker receives the retained ``online``. Both are then stopped. Rounds alternate
so that both see the same machine. The ratio of the medians is the figure; the
target (issue 14) is <= 3x.
"""

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from statistics import median
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
    now,
    progress,
    running_broker,
    source_state,
    table,
    verdict,
    workspace,
)

OUT = Path("bench/results/startup.json")
TARGET = 3.0
BARE_TOPIC = "bench/bare/status"
DAEMON_TOPIC = "needlecare/status"

BARE = """
import sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
done = threading.Event()
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bare", protocol=mqtt.MQTTv5)
client.on_connect = lambda c, *a: c.publish(sys.argv[3], b"online", qos=1, retain=True)
client.on_publish = lambda *a: done.set()
client.connect(sys.argv[1], int(sys.argv[2]))
client.loop_start()
done.wait(30)
sys.stdin.read()
"""


class Watcher:
    """A subscriber that stamps each ``online`` it receives, per topic."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.online: dict[str, list[float]] = {BARE_TOPIC: [], DAEMON_TOPIC: []}

    def on_message(self, message: Any, stamp: float) -> None:
        if message.payload == b"online":
            with self._changed:
                self.online[message.topic].append(stamp)
                self._changed.notify_all()

    def wait(self, topic: str, after: float, timeout: float = 30.0) -> float:
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(s > after for s in self.online[topic]), timeout
            )
            if not found:
                raise BenchError(f"no retained online on {topic} within {timeout} s")
            return min(s for s in self.online[topic] if s > after)


def bare_round(broker: Any, watcher: Watcher) -> float:
    spawned = now()
    process = subprocess.Popen(
        [sys.executable, "-c", BARE, broker.host, str(broker.port), BARE_TOPIC],
        stdin=subprocess.PIPE,
    )
    try:
        return watcher.wait(BARE_TOPIC, spawned) - spawned
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(10)


def daemon_round(daemon: Daemon, watcher: Watcher) -> float:
    daemon.start()
    try:
        return watcher.wait(DAEMON_TOPIC, daemon.spawned_at) - daemon.spawned_at
    finally:
        if daemon.stop() != 0:
            raise BenchError(f"the daemon did not stop cleanly:\n{daemon.log_tail()}")


def run(rounds: int, workdir: Path | None) -> dict[str, Any]:
    before = source_state()
    bare: list[float] = []
    ours: list[float] = []
    loads: list[float] = []
    with workspace(workdir, "needlecare-bench-startup-") as work:
        with running_broker(work / "broker") as broker:
            config = daemon_config(
                broker,
                work / "needlecare.db",
                profiles={"alice": {"timezone": "Europe/Berlin"}},
                devices={"pen1": {"owner": "alice"}},
                mirrors={"hallway": {}},
            )
            daemon = Daemon(work / "daemon", config)
            watcher = Watcher()
            client_id = f"bench-startup-watch-{os.getpid()}"
            watch = Peer(
                broker.host, broker.port, client_id=client_id, on_message=watcher.on_message
            )
            with watch as peer:
                peer.subscribe(BARE_TOPIC)
                peer.subscribe(DAEMON_TOPIC)
                first = daemon_round(daemon, watcher)  # creates and migrates the store
                for n in range(rounds):
                    loads.append(load_average())
                    bare.append(bare_round(broker, watcher))
                    ours.append(daemon_round(daemon, watcher))
                    progress(f"round {n + 1}: bare {bare[-1]:.3f} s, needlecare {ours[-1]:.3f} s")
        found = machine(work, source_before=before)
    ratio = median(ours) / median(bare)
    return {
        "bench": "startup",
        "machine": found,
        "rounds": rounds,
        "first_start_s": first,
        "bare_s": bare,
        "needlecare_s": ours,
        "bare_median_s": median(bare),
        "needlecare_median_s": median(ours),
        "ratio": ratio,
        "round_ratios": [o / b for o, b in zip(ours, bare, strict=True)],
        "target": TARGET,
        "target_met": ratio <= TARGET,
        "load_average": loads,
    }


def render(report: dict[str, Any]) -> str:
    rows = [
        [str(n + 1), fmt(b * 1e3, 0), fmt(o * 1e3, 0), fmt(o / b, 2), fmt(load, 2)]
        for n, (b, o, load) in enumerate(
            zip(report["bare_s"], report["needlecare_s"], report["load_average"], strict=True)
        )
    ]
    lines = [
        "Process start -> retained online (ms), a restart on an existing store:",
        table(("round", "bare paho", "needlecare", "ratio", "load"), rows),
        "",
        f"first start (creates the store): {report['first_start_s'] * 1e3:.0f} ms",
        f"median: needlecare {report['needlecare_median_s'] * 1e3:.0f} ms, bare"
        f" {report['bare_median_s'] * 1e3:.0f} ms = {report['ratio']:.2f}x"
        f" (target <= {report['target']:.0f}x: {verdict(report['target_met'])})",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("bench.startup", __doc__, out=OUT, workdir_help="keep the store here")
    parser.add_argument("--rounds", type=int, default=7, help="paired rounds")
    args = parser.parse_args(argv)
    finish(run(args.rounds, args.workdir), args.out, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
