"""A dead-letter flood: 100,000 bad payloads at full speed; the store stays small.

A misbehaving device or a hostile client publishes N payloads of 200 bytes that are
not JSON, as fast as the broker takes them (QoS 1, windows of 100 in flight), to a
device topic.
The daemon (default retention: 10,000 dead letters kept, the rest counted) must
dead-letter every one, keep its store within 8 MB of where it started, and still
answer: a valid event sent afterwards is recorded, and its status stays ``online``.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import (
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
    progress,
    rss_mib,
    running_broker,
    source_state,
    verdict,
    wait_for_store,
    wait_idle,
    wait_online,
    workspace,
)

OUT = Path("bench/results/flood.json")
GROWTH_TARGET = 8 * 2**20
PAYLOAD_BYTES = 200
TOPIC = "needlecare/device/pen1/event"
WINDOW = 100


def store_bytes(db: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        path = db.with_name(db.name + suffix)
        total += path.stat().st_size if path.exists() else 0
    return total


def handled(reader: StoreReader) -> int:
    rows = reader.scalar("SELECT count(*) FROM dead_letters")
    dropped = reader.scalar("SELECT value FROM meta WHERE key = 'dead_letters_dropped'")
    return int(rows) + int(dropped or 0)


def run(count: int, workdir: Path | None) -> dict[str, Any]:
    before = source_state()
    with workspace(workdir, "needlecare-bench-flood-") as work:
        with running_broker(work / "broker") as broker:
            config = daemon_config(
                broker,
                work / "needlecare.db",
                profiles={"alice": {"timezone": "Europe/Berlin"}},
                devices={"pen1": {"owner": "alice"}},
            )
            daemon = Daemon(work / "daemon", config).start()
            try:
                wait_online(broker)
                reader = wait_for_store(daemon.db)
                wait_idle(daemon.pid, quiet_s=1.0)
                size_before = store_bytes(daemon.db)
                bad = [
                    (b"{" + b"x" * (PAYLOAD_BYTES - 12) + f"{n:10d}".encode()) for n in range(count)
                ]
                progress(f"flood: {count:,} bad payloads")
                started = now()
                with Peer(
                    broker.host, broker.port, client_id="bench-flood", max_inflight=WINDOW
                ) as peer:
                    # A window at a time: paho 2.2 stalled for good after ~70,000 messages
                    # queued from this thread beyond its in-flight limit.
                    for first in range(0, count, WINDOW):
                        window = bad[first : first + WINDOW]
                        for mid in [peer.publish(TOPIC, payload) for payload in window]:
                            peer.acked_at(mid, timeout=60)
                    published = now()
                    finished = reader.wait_until(
                        "SELECT 1", lambda _v: handled(reader) >= count, timeout=600, poll_s=0.2
                    )
                    peak_rss = rss_mib(daemon.pid, "VmHWM")
                    # Still answering: a valid event afterwards lands.
                    good = b'{"event_id": "after-flood", "type": "session_started"}'
                    sent = now()
                    peer.acked_at(peer.publish(TOPIC, good))
                    answered = reader.wait_until(
                        "SELECT count(*) FROM events WHERE event_id = 'after-flood'",
                        lambda n: n == 1,
                        timeout=60,
                    )
                wait_idle(daemon.pid, quiet_s=2.0)
                size_after = store_bytes(daemon.db)
                kept = reader.scalar("SELECT count(*) FROM dead_letters")
                dropped = reader.scalar("SELECT value FROM meta WHERE key = 'dead_letters_dropped'")
                reader.__exit__()
                alive = daemon.stop() == 0
            finally:
                daemon.stop()
        found = machine(work, source_before=before)
    growth = size_after - size_before
    return {
        "bench": "flood",
        "machine": found,
        "payloads": count,
        "payload_bytes": PAYLOAD_BYTES,
        "publish_s": published - started,
        "handled_s": finished - started,
        "dead_letters_per_s": count / (finished - started),
        "after_flood_event_ms": (answered - sent) * 1e3,
        "store_bytes_before": size_before,
        "store_bytes_after": size_after,
        "growth_bytes": growth,
        "dead_letters_kept": kept,
        "dead_letters_dropped": int(dropped or 0),
        "peak_rss_mib": peak_rss,
        "stopped_cleanly": alive,
        "target": {"growth_bytes": GROWTH_TARGET, "met": growth <= GROWTH_TARGET and alive},
        "load_average": load_average(),
    }


def render(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Flood: {report['payloads']:,} bad payloads of {report['payload_bytes']} B",
            f"dead-lettered in {report['handled_s']:.1f} s"
            f" ({report['dead_letters_per_s']:,.0f}/s;"
            f" publishing took {report['publish_s']:.1f} s)",
            f"store {report['store_bytes_before'] / 2**20:.2f} -> "
            f"{report['store_bytes_after'] / 2**20:.2f} MiB (growth"
            f" {report['growth_bytes'] / 2**20:.2f} MiB, target <= 8 MiB:"
            f" {verdict(report['target']['met'])})",
            f"dead letters kept {report['dead_letters_kept']:,},"
            f" dropped {report['dead_letters_dropped']:,};"
            f" peak RSS {fmt(report['peak_rss_mib'])} MiB",
            f"a valid event after the flood recorded in {report['after_flood_event_ms']:.1f} ms;"
            f" stopped cleanly: {report['stopped_cleanly']}; load {report['load_average']:.2f}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("bench.flood", __doc__, out=OUT, workdir_help="keep the store here")
    parser.add_argument("--payloads", type=int, default=100_000, help="bad payloads")
    args = parser.parse_args(argv)
    report = run(args.payloads, args.workdir)
    finish(report, args.out, render)
    return 0 if report["stopped_cleanly"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
