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
from bench.harness.report import Bench, load_average, now, progress, verdict

GROWTH_TARGET = 8 * 2**20
PAYLOAD_BYTES = 200
TOPIC = "needlecare/device/pen1/event"
DROPPED = "SELECT coalesce((SELECT value FROM meta WHERE key = 'dead_letters_dropped'), 0)"
HANDLED = f"SELECT (SELECT count(*) FROM dead_letters) + ({DROPPED})"  # noqa: S608 - constants
AFTER = "SELECT count(*) FROM events WHERE event_id = 'after-flood'"


def run(args: Any, work: Path) -> dict[str, Any]:
    count = args.payloads
    r: dict[str, Any] = {"payloads": count, "payload_bytes": PAYLOAD_BYTES}
    sections = {"profiles": ONE_PROFILE, "devices": {"pen1": {"owner": "alice"}}}
    with running_daemon(work, **sections) as daemon, wait_for_store(daemon.db) as reader:
        wait_idle(daemon.pid, quiet_s=1.0)
        r["store_bytes_before"] = sum(file_sizes(daemon.db).values())
        tail = lambda n: f"{n:10d}".encode()  # noqa: E731 - each payload differs
        bad = [(TOPIC, b"{" + b"x" * (PAYLOAD_BYTES - 12) + tail(n)) for n in range(count)]
        progress(f"flood: {count:,} bad payloads")
        started = now()
        with Peer(daemon.broker, "bench-flood", max_inflight=100) as peer:
            peer.send(bad, timeout=60)
            r["publish_s"] = now() - started
            r["handled_s"] = reader.at_least(HANDLED, count, timeout=600, poll_s=0.2) - started
            r["peak_rss_mib"] = rss_mib(daemon.pid, "VmHWM")
            sent = now()  # still answering: a valid event afterwards lands
            peer.send([(TOPIC, b'{"event_id": "after-flood", "type": "session_started"}')])
            r["after_flood_event_ms"] = (reader.at_least(AFTER, 1) - sent) * 1e3
        wait_idle(daemon.pid, quiet_s=2.0)
        r["store_bytes_after"] = sum(file_sizes(daemon.db).values())
        r["dead_letters_kept"] = reader.scalar("SELECT count(*) FROM dead_letters")
        r["dead_letters_dropped"] = int(reader.scalar(DROPPED))
        r["stopped_cleanly"] = daemon.stop() == 0
    r["dead_letters_per_s"] = count / r["handled_s"]
    r["growth_bytes"] = growth = r["store_bytes_after"] - r["store_bytes_before"]
    met = growth <= GROWTH_TARGET and r["stopped_cleanly"]
    r["target"] = {"growth_bytes": GROWTH_TARGET, "met": met}
    return r | {"load_average": load_average()}


TEXT = """\
Flood: {payloads:,} bad payloads of {payload_bytes} B
dead-lettered in {handled_s:.1f} s ({dead_letters_per_s:,.0f}/s; publishing took {publish_s:.1f} s)
store {mib[store_bytes_before]:.2f} -> {mib[store_bytes_after]:.2f} MiB \
(growth {mib[growth_bytes]:.2f} MiB, target <= 8 MiB: {verdict})
dead letters kept {dead_letters_kept:,}, dropped {dead_letters_dropped:,}; \
peak RSS {peak_rss_mib:,.1f} MiB
a valid event after the flood recorded in {after_flood_event_ms:.1f} ms; \
stopped cleanly: {stopped_cleanly}; load {load_average:.2f}"""


def render(r: dict[str, Any]) -> str:
    mib = {
        key: r[key] / 2**20 for key in ("store_bytes_before", "store_bytes_after", "growth_bytes")
    }
    return TEXT.format_map(r | {"mib": mib, "verdict": verdict(r["target"]["met"])})


OPTIONS = {"--payloads": (int, 100_000, "bad payloads")}
BENCH = Bench("flood", __doc__, run, render, ok=lambda r: r["stopped_cleanly"], options=OPTIONS)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
