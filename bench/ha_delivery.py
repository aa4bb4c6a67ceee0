"""Home Assistant delivery: prompts per second through the outbox, and the delay of one prompt.

A real Home Assistant 2024.3.3 (started as the end-to-end tests do, from the venv
that tests/e2e/install_homeassistant.sh caches; or one handed in, as the smoke test
does with its session fixture) and the daemon configured with one profile per
session, whose protocol keeps only ``soothe`` on the ``dashboard`` channel. Each
soothe becomes two calls through the outbox, one at a time: the
``persistent_notification.create`` and the ``needlecare_reminder`` event (which the
test configuration's automation records as a notification of its own). For
reference, the same two calls are made without the daemon, one at a time from one
``homeassistant_api`` client (the library the daemon's worker uses).

A websocket subscription (``persistent_notification/subscribe``) stamps each
notification as Home Assistant announces it. Two measurements:

* **burst**: --burst sessions are started (and stored), then all their ends are
  published at once; prompts/s = burst / (first end published -> last of their
  notifications announced).
* **sequential**: --sequential sessions one at a time; the delay from publishing the
  end to that session's notification, split by the daemon's log into
  publish -> reminder delivered -> announced by Home Assistant.

    python -m bench.ha_delivery [--burst 200] [--sequential 50]
"""

import argparse
import contextlib
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bench._common import (
    BenchError,
    Daemon,
    Peer,
    StoreReader,
    bench_parser,
    daemon_config,
    finish,
    fmt,
    free_port,
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
    wait_for_store,
    wait_idle,
    wait_online,
    wall_clock,
    workspace,
)
from needlecare.domain.planning import reminder_id
from needlecare.domain.sessions import session_id_for
from needlecare_integrations.broker import MosquittoBroker

DEFAULT_BURST = 200
DEFAULT_SEQUENTIAL = 50
WARMUP = 2
DEFAULT_OUT = Path("bench/results/ha_delivery.json")
TESTS = Path(__file__).resolve().parents[1] / "tests"
EVENT_BYTES = 200
PAUSE_S = 0.005
ARRIVAL_TIMEOUT_S = 60.0
BURST_TIMEOUT_S = 300.0
NOTIFICATION_PREFIX = "needlecare_"


class HomeAssistantLike(Protocol):
    """What the bench needs of a Home Assistant: where it is and a token."""

    @property
    def url(self) -> str: ...

    @property
    def token(self) -> str: ...


# -- Home Assistant -------------------------------------------------------------------------------


@contextmanager
def own_homeassistant(work: Path) -> Iterator[tuple[HomeAssistantLike, float]]:
    """A Home Assistant of our own, started as the e2e fixture does; and its start-up seconds."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from support.homeassistant import (  # type: ignore[import-not-found]  # noqa: PLC0415
        HomeAssistant,
        homeassistant_venv,
    )

    progress("ha_delivery: installing (first time only) and starting Home Assistant")
    hass = HomeAssistant(
        venv=homeassistant_venv(), config_dir=work / "homeassistant", port=free_port()
    )
    started = now()
    try:
        hass.start()
        yield hass, now() - started
    finally:
        hass.stop()


class NotificationWatch:
    """A websocket subscription to persistent notifications; stamps each id when first added."""

    def __init__(self, hass: HomeAssistantLike) -> None:
        from homeassistant_api import WebsocketClient  # noqa: PLC0415 - heavy import
        from niquests import Session  # noqa: PLC0415

        session = Session()
        session.trust_env = False  # loopback: no proxies
        self._client = WebsocketClient(f"{hass.url}/api/websocket", hass.token, session=session)
        self._changed = threading.Condition()
        self.added: dict[str, float] = {}
        self._thread = threading.Thread(target=self._read, name="ha-watch", daemon=True)
        self._closing = False

    def __enter__(self) -> "NotificationWatch":
        self._client.__enter__()
        self._subscription = self._client.send("persistent_notification/subscribe")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        with contextlib.suppress(Exception):  # the reader may have lost the socket already
            self._client.__exit__(None, None, None)
        self._thread.join(5)

    def _read(self) -> None:
        while not self._closing:
            try:
                # Raw JSON: the library's event models do not know this subscription's events.
                message = self._client._recv()
            except Exception:  # closed by __exit__, or Home Assistant went away
                return
            stamp = now()
            event = message.get("event")
            if message.get("id") != self._subscription or not isinstance(event, dict):
                continue
            if event.get("type") not in {"added", "current", "updated"}:
                continue
            with self._changed:
                for notification_id in event.get("notifications", {}):
                    self.added.setdefault(str(notification_id), stamp)
                self._changed.notify_all()

    def wait(self, ids: Sequence[str], timeout: float) -> list[float] | None:
        """The stamps of every id in ``ids``, once all have been added; None on timeout."""
        with self._changed:
            if not self._changed.wait_for(lambda: all(i in self.added for i in ids), timeout):
                return None
            return [self.added[i] for i in ids]


# -- sessions -------------------------------------------------------------------------------------


class Sessions:
    """Publishes starts and ends of sessions, one profile and device per session."""

    def __init__(self, broker: MosquittoBroker, reader: StoreReader, tag: str) -> None:
        self.reader = reader
        self.tag = tag
        self.peer = Peer(broker.host, broker.port, client_id=f"bench-ha-{tag}")

    def profile(self, number: int) -> str:
        return f"{self.tag}{number:03d}"

    def start(self, numbers: Sequence[int]) -> None:
        """Publish the starts and wait until the store holds them all."""
        mids = []
        for number in numbers:
            body = {"event_id": f"{self.tag}-s{number}", "type": "session_started"}
            body["profile"] = self.profile(number)
            mids.append(self.peer.publish(self._topic(number), pad_json(body, EVENT_BYTES)))
        for mid in mids:
            self.peer.acked_at(mid)
        ids = [session_id_for(f"{self.tag}-s{number}") for number in numbers]
        marks = ",".join("?" * len(ids))
        self.reader.wait_until(
            f"SELECT count(*) FROM sessions WHERE id IN ({marks})",  # noqa: S608 - placeholders
            lambda n: n == len(ids),
            params=ids,
            poll_s=0.002,
        )

    def end(self, numbers: Sequence[int]) -> float:
        """Publish the ends back to back; the stamp of the first publish."""
        sent = now()
        mids = []
        for number in numbers:
            body: dict[str, Any] = {"event_id": f"{self.tag}-e{number}", "type": "session_ended"}
            body |= {"profile": self.profile(number), "passes": 4, "duration_s": 900}
            mids.append(self.peer.publish(self._topic(number), pad_json(body, EVENT_BYTES)))
        for mid in mids:
            self.peer.acked_at(mid)
        return sent

    def notification_id(self, number: int) -> str:
        session = session_id_for(f"{self.tag}-s{number}")
        return NOTIFICATION_PREFIX + reminder_id(session, "soothe")

    def _topic(self, number: int) -> str:
        return f"needlecare/device/{self.tag}pen{number:03d}/event"


def _burst(
    sessions: Sessions, watch: NotificationWatch, numbers: range, pid: int
) -> dict[str, Any]:
    progress(f"ha_delivery: burst of {len(numbers)} sessions")
    sessions.start(numbers)
    wait_idle(pid)
    sent = sessions.end(numbers)
    arrived = watch.wait([sessions.notification_id(n) for n in numbers], BURST_TIMEOUT_S)
    if arrived is None:
        raise BenchError(f"not every burst notification arrived within {BURST_TIMEOUT_S} s")
    seconds = max(arrived) - sent
    return {
        "sessions": len(numbers),
        "seconds": seconds,
        "prompts_per_s": len(numbers) / seconds,
        "ha_calls_per_s": 2 * len(numbers) / seconds,
        "delay_ms": percentiles([stamp - sent for stamp in arrived]),
    }


def _sequential(
    sessions: Sessions, watch: NotificationWatch, numbers: range, *, record: bool
) -> list[dict[str, Any]]:
    samples = []
    for number in numbers:
        sessions.start([number])
        time.sleep(PAUSE_S)
        sent_wall = wall_clock()
        sent = sessions.end([number])
        arrived = watch.wait([sessions.notification_id(number)], ARRIVAL_TIMEOUT_S)
        if arrived is None:
            raise BenchError(f"no notification for session {number} in {ARRIVAL_TIMEOUT_S} s")
        if record:
            samples.append(
                {
                    "reminder_id": sessions.notification_id(number).removeprefix(
                        NOTIFICATION_PREFIX
                    ),
                    "sent_wall": sent_wall,
                    "delay_s": arrived[0] - sent,
                }
            )
        time.sleep(PAUSE_S)
    return samples


def _split(daemon: Daemon, samples: list[dict[str, Any]]) -> dict[str, Any]:
    delivered: dict[str, datetime] = {}
    for entry in daemon.log_events():
        if entry.get("event") == "reminder_delivered":
            stamp = datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00"))
            delivered.setdefault(str(entry.get("reminder_id")), stamp)
    to_delivered, to_announced = [], []
    for sample in samples:
        at = delivered.get(sample["reminder_id"])
        if at is None:
            continue
        first = (at - sample["sent_wall"]).total_seconds()
        to_delivered.append(first)
        to_announced.append(sample["delay_s"] - first)
    if not to_delivered:
        return {}
    return {"to_delivered": percentiles(to_delivered), "to_announced": percentiles(to_announced)}


# -- the same calls without the daemon ------------------------------------------------------------


_TITLE = "Soothe your skin"
_MESSAGE = "Your skin is sensitive now. Apply a soothing serum or cream to calm it."


def _bare_prompt(client: Any, notification_id: str) -> None:
    """What the outbox sends for one soothe: the notification, then the event."""
    client.trigger_service(
        "persistent_notification",
        "create",
        notification_id=notification_id,
        title=_TITLE,
        message=_MESSAGE,
    )
    client.fire_event(
        "needlecare_reminder",
        profile="bench",
        kind="soothe",
        reminder_id=notification_id,
        title=_TITLE,
        message=_MESSAGE,
        severity="warning",
    )


def measure_bare(
    hass: HomeAssistantLike, watch: NotificationWatch, *, burst: int, sequential: int
) -> dict[str, Any]:
    """The same two calls per prompt from one homeassistant_api Client, one at a time."""
    from homeassistant_api import Client  # noqa: PLC0415 - heavy import

    with Client(f"{hass.url}/api", hass.token, global_request_kwargs={"timeout": 10.0}) as client:
        return _bare_calls(client, watch, burst=burst, sequential=sequential)


def _bare_calls(
    client: Any, watch: NotificationWatch, *, burst: int, sequential: int
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    _bare_prompt(client, f"bench_bare_{tag}_warmup")
    ids = [f"bench_bare_{tag}_b{n}" for n in range(burst)]
    sent = now()
    for notification_id in ids:
        _bare_prompt(client, notification_id)
    arrived = watch.wait(ids, BURST_TIMEOUT_S)
    if arrived is None:
        raise BenchError("not every bare notification arrived")
    seconds = max(arrived) - sent
    delays = []
    for number in range(sequential):
        notification_id = f"bench_bare_{tag}_s{number}"
        started = now()
        _bare_prompt(client, notification_id)
        seen = watch.wait([notification_id], ARRIVAL_TIMEOUT_S)
        if seen is None:
            raise BenchError(f"no bare notification {notification_id}")
        delays.append(seen[0] - started)
        time.sleep(PAUSE_S)
    return {
        "prompts_per_s": burst / seconds,
        "calls_per_s": 2 * burst / seconds,
        "sequential_ms": percentiles(delays),
    }


# -- the run ---------------------------------------------------------------------------------------


def measure(hass: HomeAssistantLike, work: Path, *, burst: int, sequential: int) -> dict[str, Any]:
    """Both measurements against ``hass``, with a daemon and a broker of their own."""
    tag = f"h{uuid.uuid4().hex[:6]}"
    total = WARMUP + burst + sequential
    with running_broker(work / "broker") as broker:
        config = daemon_config(
            broker,
            work / "needlecare.db",
            mqtt={"client_id": f"needlecare-{tag}"},
            homeassistant={"url": hass.url, "token": hass.token},
            profiles={f"{tag}{n:03d}": {"timezone": "Europe/Berlin"} for n in range(total)},
            protocol=only_soothe(["dashboard"]),
        )
        daemon = Daemon(work / "daemon", config).start()
        try:
            wait_online(broker)
            daemon.wait_for("homeassistant_listening")
            wait_idle(daemon.pid)
            with (
                wait_for_store(daemon.db) as reader,
                NotificationWatch(hass) as watch,
            ):
                sessions = Sessions(broker, reader, tag)
                with sessions.peer:
                    _sequential(sessions, watch, range(WARMUP), record=False)
                    bursted = _burst(sessions, watch, range(WARMUP, WARMUP + burst), daemon.pid)
                    wait_idle(daemon.pid)
                    progress(f"ha_delivery: {sequential} sessions one at a time")
                    samples = _sequential(
                        sessions, watch, range(WARMUP + burst, total), record=True
                    )
                progress("ha_delivery: the same calls without the daemon")
                bare = measure_bare(hass, watch, burst=burst, sequential=sequential)
            exit_code = daemon.stop()
        finally:
            daemon.stop()
    return {
        "profiles": total,
        "burst": bursted,
        "sequential_ms": percentiles([s["delay_s"] for s in samples]),
        "sequential_split_ms": _split(daemon, samples),
        "bare": bare,
        "throughput_ratio": bursted["prompts_per_s"] / bare["prompts_per_s"],
        "exit_code": exit_code,
    }


def run(
    *,
    burst: int,
    sequential: int,
    hass: HomeAssistantLike | None = None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """The Home Assistant measurements, as the JSON report; starts a Home Assistant if none."""
    started_at = wall_clock()
    source_before = source_state()
    load_before = load_average()
    with workspace(workdir, "bench-ha-") as work:
        if hass is None:
            with own_homeassistant(work) as (own, start_s):
                result = measure(own, work, burst=burst, sequential=sequential)
        else:
            start_s = None
            result = measure(hass, work, burst=burst, sequential=sequential)
        machine_info = machine(work, source_before=source_before)
    return {
        "bench": "ha_delivery",
        "started_at": started_at.isoformat(),
        "finished_at": wall_clock().isoformat(),
        "machine": {**machine_info, "homeassistant": "2024.3.3"},
        "homeassistant_start_s": start_s,
        "load_average_before": load_before,
        **result,
    }


def render(report: dict[str, Any]) -> str:
    headers = ("ms", "n", "p50", "p90", "p99", "max")
    b = report["burst"]

    def row(label: str, f: dict[str, float]) -> list[str]:
        return [label, str(f["n"]), *(fmt(f[k], 1) for k in ("p50", "p90", "p99", "max"))]

    rows = [
        row("burst: ends published -> each notification", b["delay_ms"]),
        row("one at a time: end published -> notification", report["sequential_ms"]),
    ]
    split = report["sequential_split_ms"]
    if split:
        rows += [
            row("  of which: -> reminder delivered (daemon log)", split["to_delivered"]),
            row("  of which: delivered -> announced by HA", split["to_announced"]),
        ]
    bare = report["bare"]
    rows.append(row("bare: create + event calls -> notification", bare["sequential_ms"]))
    start = report["homeassistant_start_s"]
    started = "" if start is None else f"; Home Assistant started in {start:.1f} s"
    return "\n".join(
        [
            f"Home Assistant delivery ({report['profiles']} profiles, dashboard channel{started})",
            f"burst: {b['sessions']} prompts in {b['seconds']:.2f} s = {b['prompts_per_s']:.1f}"
            f" prompts/s ({b['ha_calls_per_s']:.1f} Home Assistant calls/s)",
            f"bare (the same calls from one client, no daemon): {bare['prompts_per_s']:.1f}"
            f" prompts/s ({bare['calls_per_s']:.1f} calls/s); needlecare / bare:"
            f" {report['throughput_ratio']:.0%}",
            table(headers, rows),
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "bench.ha_delivery", __doc__, out=DEFAULT_OUT, workdir_help="keep HA, store and logs here"
    )
    parser.add_argument("--burst", type=int, default=DEFAULT_BURST)
    parser.add_argument("--sequential", type=int, default=DEFAULT_SEQUENTIAL)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, write the JSON; exit 1 if the daemon did not stop cleanly."""
    args = parse_args(argv)
    if args.burst < 1 or args.sequential < 1:
        raise SystemExit("--burst and --sequential must be positive")
    report = run(burst=args.burst, sequential=args.sequential, workdir=args.workdir)
    finish(report, args.out, render)
    return 0 if report["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
