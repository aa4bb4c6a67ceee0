"""A dead-letter flood: 100,000 bad payloads at full speed; the store stays small.

N payloads of 200 B that are not JSON, QoS 1 in windows of 100, to a device topic. The
daemon (default retention) must dead-letter or count every one, grow its store by <= 8
MB and still answer: a valid event afterwards is recorded, and it stops cleanly.
"""

from pathlib import Path
from typing import Any

from bench.harness.daemon import ONE_PROFILE, file_sizes, running_daemon, wait_for_store
from bench.harness.mqtt import Peer
from bench.harness.proc import rss_mib, wait_idle
from bench.harness.report import Bench, fmt, load_average, now, progress, verdict

GROWTH_TARGET = 8 * 2**20
PAYLOAD_BYTES = 200
TOPIC = "needlecare/device/pen1/event"
DROPPED = "SELECT coalesce((SELECT value FROM meta WHERE key = 'dead_letters_dropped'), 0)"
HANDLED = f"SELECT (SELECT count(*) FROM dead_letters) + ({DROPPED})"  # noqa: S608 - constants


def run(args: Any, work: Path) -> dict[str, Any]:
    count = args.payloads
    sections = {"profiles": ONE_PROFILE, "devices": {"pen1": {"owner": "alice"}}}
    with running_daemon(work, **sections) as daemon, wait_for_store(daemon.db) as reader:
        wait_idle(daemon.pid, quiet_s=1.0)
        size_before = sum(file_sizes(daemon.db).values())
        bad = [(TOPIC, b"{" + b"x" * (PAYLOAD_BYTES - 12) + f"{n:10d}".encode())
               for n in range(count)]  # fmt: skip
        progress(f"flood: {count:,} bad payloads")
        started = now()
        with Peer(daemon.broker, "bench-flood", max_inflight=100) as peer:
            peer.send(bad, timeout=60)
            published = now()
            finished = reader.at_least(HANDLED, count, timeout=600, poll_s=0.2)
            peak_rss = rss_mib(daemon.pid, "VmHWM")
            sent = now()  # still answering: a valid event afterwards lands
            peer.send([(TOPIC, b'{"event_id": "after-flood", "type": "session_started"}')])
            after = "SELECT count(*) FROM events WHERE event_id = 'after-flood'"
            answered = reader.at_least(after, 1)
        wait_idle(daemon.pid, quiet_s=2.0)
        size_after = sum(file_sizes(daemon.db).values())
        kept, dropped = reader.scalar("SELECT count(*) FROM dead_letters"), reader.scalar(DROPPED)
        alive = daemon.stop() == 0
    growth = size_after - size_before
    return {"payloads": count, "payload_bytes": PAYLOAD_BYTES, "publish_s": published - started,
            "handled_s": finished - started, "dead_letters_per_s": count / (finished - started),
            "after_flood_event_ms": (answered - sent) * 1e3, "store_bytes_before": size_before,
            "store_bytes_after": size_after, "growth_bytes": growth, "dead_letters_kept": kept,
            "dead_letters_dropped": int(dropped), "peak_rss_mib": peak_rss,
            "stopped_cleanly": alive,
            "target": {"growth_bytes": GROWTH_TARGET, "met": growth <= GROWTH_TARGET and alive},
            "load_average": load_average()}  # fmt: skip


def render(r: dict[str, Any]) -> str:
    return "\n".join([
        f"Flood: {r['payloads']:,} bad payloads of {r['payload_bytes']} B",
        f"dead-lettered in {r['handled_s']:.1f} s ({r['dead_letters_per_s']:,.0f}/s;"
        f" publishing took {r['publish_s']:.1f} s)",
        f"store {r['store_bytes_before'] / 2**20:.2f} -> {r['store_bytes_after'] / 2**20:.2f}"
        f" MiB (growth {r['growth_bytes'] / 2**20:.2f} MiB, target <= 8 MiB:"
        f" {verdict(r['target']['met'])})",
        f"dead letters kept {r['dead_letters_kept']:,}, dropped {r['dead_letters_dropped']:,};"
        f" peak RSS {fmt(r['peak_rss_mib'])} MiB",
        f"a valid event after the flood recorded in {r['after_flood_event_ms']:.1f} ms;"
        f" stopped cleanly: {r['stopped_cleanly']}; load {r['load_average']:.2f}",
    ])  # fmt: skip


OPTIONS = {"--payloads": (int, 100_000, "bad payloads")}
BENCH = Bench("flood", __doc__, run, render, ok=lambda r: r["stopped_cleanly"], options=OPTIONS)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
