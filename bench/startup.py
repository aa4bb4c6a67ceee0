"""Process start to the retained ``online``: the daemon beside a bare Python + paho client.

Alternating rounds: a bare ``python -c`` client (paho, MQTT 5, a retained ``online``
with QoS 1) and ``needlecare run`` restarting on an existing store, each timed from its
spawn to the ``online`` seen by a subscriber already connected. Target: the ratio of
the medians <= 3x (issue 14). The daemon says ``online`` once its config is valid and
its store open, and builds its core loop meanwhile; so each round also gives the time to
``daemon_started`` (the core loop running), beside the same bare figure.
"""

import subprocess
import sys
import threading
from pathlib import Path
from statistics import median
from typing import Any

from bench.harness.daemon import ONE_PROFILE, Daemon, running_daemon
from bench.harness.mqtt import Peer
from bench.harness.report import Bench, BenchError, fmt, load_average, now, progress, table, verdict

TARGET = 3.0
BARE_TOPIC, DAEMON_TOPIC = "bench/bare/status", "needlecare/status"
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

    def since(self, topic: str, after: float, timeout: float = 30.0) -> float:
        """Seconds from ``after`` to the first ``online`` on ``topic`` after it."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.online[topic][-1:] > [after], timeout):
                raise BenchError(f"no retained online on {topic} within {timeout} s")
            return min(s for s in self.online[topic] if s > after) - after


def bare_round(daemon: Daemon, watcher: Watcher) -> float:
    spawned, broker = now(), daemon.broker
    command = [sys.executable, "-c", BARE, broker.host, str(broker.port), BARE_TOPIC]
    process = subprocess.Popen(command, stdin=subprocess.PIPE)
    try:
        return watcher.since(BARE_TOPIC, spawned)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(10)


def daemon_round(daemon: Daemon, watcher: Watcher) -> tuple[float, float]:
    """Seconds from the spawn to the retained ``online`` and to the core loop running."""
    daemon.start()
    try:
        online = watcher.since(DAEMON_TOPIC, daemon.spawned_at)
        return online, daemon.wait_for("daemon_started") - daemon.spawned_at
    finally:
        daemon.restart_clean()


def run(args: Any, work: Path) -> dict[str, Any]:
    bare: list[float] = []
    ours: list[float] = []
    ready: list[float] = []
    loads: list[float] = []
    sections = {"devices": {"pen1": {"owner": "alice"}}, "mirrors": {"hallway": {}}}
    with running_daemon(work, start=False, profiles=ONE_PROFILE, **sections) as daemon:
        watcher = Watcher()
        with Peer(daemon.broker, "bench-startup-watch", on_message=watcher.on_message) as peer:
            peer.subscribe(BARE_TOPIC, DAEMON_TOPIC)
            first, _ = daemon_round(daemon, watcher)  # creates and migrates the store
            for n in range(args.rounds):
                loads.append(load_average())
                bare.append(bare_round(daemon, watcher))
                online, started = daemon_round(daemon, watcher)
                ours.append(online)
                ready.append(started)
                progress(f"round {n + 1}: bare {bare[-1]:.3f} s, needlecare {online:.3f} s")
    ratio = median(ours) / median(bare)
    return {"rounds": args.rounds, "first_start_s": first, "bare_s": bare, "needlecare_s": ours,
            "bare_median_s": median(bare), "needlecare_median_s": median(ours), "ratio": ratio,
            "ready_s": ready, "ready_median_s": median(ready),
            "ready_ratio": median(ready) / median(bare),
            "round_ratios": [o / b for o, b in zip(ours, bare, strict=True)],
            "target": TARGET, "target_met": ratio <= TARGET, "load_average": loads}  # fmt: skip


def render(report: dict[str, Any]) -> str:
    series = zip(report["bare_s"], report["needlecare_s"], report["ready_s"],
                 report["load_average"], strict=True)  # fmt: skip
    rows = [
        [str(n + 1), fmt(b * 1e3, 0), fmt(o * 1e3, 0), fmt(o / b, 2), fmt(r * 1e3, 0), fmt(load, 2)]
        for n, (b, o, r, load) in enumerate(series)
    ]
    return "\n".join([
        "Process start -> retained online (ms), a restart on an existing store:",
        table(("round", "bare paho", "needlecare", "ratio", "core running", "load"), rows),
        "",
        f"first start (creates the store): {report['first_start_s'] * 1e3:.0f} ms",
        f"median: needlecare {report['needlecare_median_s'] * 1e3:.0f} ms, bare"
        f" {report['bare_median_s'] * 1e3:.0f} ms = {report['ratio']:.2f}x"
        f" (target <= {report['target']:.0f}x: {verdict(report['target_met'])})",
        f"core loop running: {report['ready_median_s'] * 1e3:.0f} ms ="
        f" {report['ready_ratio']:.2f}x the bare client's online (no target)",
    ])  # fmt: skip


BENCH = Bench("startup", __doc__, run, render, options={"--rounds": (int, 7, "paired rounds")})
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
