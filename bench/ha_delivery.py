"""Home Assistant delivery: prompts per second through the outbox, and the delay of one prompt.

A real Home Assistant 2024.3.3 (the e2e tests' cached venv, or one handed in) and the
daemon with one profile per session, protocol: only ``soothe`` on ``dashboard`` (two
calls per prompt, one at a time). A websocket subscription stamps each notification.
**burst**: --burst ends published at once; **sequential**: one at a time, split by the
daemon's log. Reference: the same two calls from one ``homeassistant_api`` client.
"""

import contextlib
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.harness.daemon import PAUSE_S, Sessions, only_soothe, running_daemon
from bench.harness.daemon import wait_for_store as store_of
from bench.harness.mqtt import Peer, free_port
from bench.harness.proc import wait_idle
from bench.harness.report import (
    ROOT,
    Bench,
    BenchError,
    Stamps,
    now,
    pct_table,
    percentiles,
    progress,
)

HA_VERSION = "2024.3.3"
WARMUP = 2
ARRIVAL_TIMEOUT_S, BURST_TIMEOUT_S = 60.0, 300.0
PREFIX = "needlecare_"
TITLE = "Soothe your skin"
MESSAGE = "Your skin is sensitive now. Apply a soothing serum or cream to calm it."


@contextmanager
def own_homeassistant(work: Path) -> Iterator[tuple[Any, float]]:
    """A Home Assistant of our own, started as the e2e fixture does; and its start-up seconds."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from support.homeassistant import HomeAssistant, homeassistant_venv  # noqa: PLC0415

    progress("ha_delivery: installing (first time only) and starting Home Assistant")
    venv = homeassistant_venv(HA_VERSION)
    hass = HomeAssistant(venv=venv, config_dir=work / "ha", port=free_port(), version=HA_VERSION)
    started = now()
    try:
        hass.start()
        yield hass, now() - started
    finally:
        hass.stop()


class NotificationWatch(Stamps):
    """A websocket subscription to persistent notifications; stamps each id as it is added."""

    def __init__(self, hass: Any) -> None:
        from homeassistant_api import WebsocketClient  # noqa: PLC0415 - heavy import
        from niquests import Session  # noqa: PLC0415

        super().__init__()
        session = Session()
        session.trust_env = False  # loopback: no proxies
        self._client = WebsocketClient(f"{hass.url}/api/websocket", hass.token, session=session)
        self._thread = threading.Thread(target=self._read, name="ha-watch", daemon=True)

    def __enter__(self) -> "NotificationWatch":
        self._client.__enter__()
        self._subscription = self._client.send("persistent_notification/subscribe")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        with contextlib.suppress(Exception):  # the reader may have lost the socket already
            self._client.__exit__(None, None, None)
        self._thread.join(5)

    def _read(self) -> None:
        while not self.closed:
            try:  # raw JSON: the library's event models do not know this subscription's events
                message = self._client._recv()
            except Exception:  # closed by __exit__, or Home Assistant went away
                return
            stamp, event = now(), message.get("event")
            if message.get("id") != self._subscription or not isinstance(event, dict):
                continue
            if event.get("type") in {"added", "current", "updated"}:
                for notification_id in event.get("notifications", {}):
                    self.add(str(notification_id), stamp)


def burst(sessions: Sessions, watch: NotificationWatch, numbers: range, pid: int) -> Any:
    progress(f"ha_delivery: burst of {len(numbers)} sessions")
    sessions.start(numbers)
    wait_idle(pid)
    sent, _ = sessions.end(numbers)
    ids = [PREFIX + sessions.soothe(n) for n in numbers]
    arrived = watch.first(ids, BURST_TIMEOUT_S, what=f"{len(ids)} notifications")
    seconds = max(arrived) - sent
    return {
        "sessions": len(numbers),
        "seconds": seconds,
        "prompts_per_s": len(numbers) / seconds,
        "ha_calls_per_s": 2 * len(numbers) / seconds,
        "delay_ms": percentiles([stamp - sent for stamp in arrived]),
    }


def one_at_a_time(sessions: Sessions, watch: NotificationWatch, numbers: range) -> list[Any]:
    samples = []
    for number in numbers:
        samples.append(sessions.prompt(number, watch, PREFIX, ARRIVAL_TIMEOUT_S))
        if samples[-1] is None:
            raise BenchError(f"no notification for session {number} in {ARRIVAL_TIMEOUT_S} s")
        time.sleep(PAUSE_S)
    return samples


def measure_bare(hass: Any, watch: NotificationWatch, *, burst: int, sequential: int) -> Any:
    """The same two calls per prompt from one homeassistant_api Client, one at a time."""
    from homeassistant_api import Client  # noqa: PLC0415 - heavy import

    def prompt(client: Any, notification_id: str) -> None:
        client.trigger_service(
            "persistent_notification",
            "create",
            title=TITLE,
            notification_id=notification_id,
            message=MESSAGE,
        )
        client.fire_event(
            "needlecare_reminder",
            profile="bench",
            kind="soothe",
            reminder_id=notification_id,
            title=TITLE,
            message=MESSAGE,
            severity="warning",
        )

    tag = uuid.uuid4().hex[:6]
    with Client(f"{hass.url}/api", hass.token, global_request_kwargs={"timeout": 10.0}) as client:
        prompt(client, f"bench_bare_{tag}_warmup")
        ids = [f"bench_bare_{tag}_b{n}" for n in range(burst)]
        sent = now()
        for notification_id in ids:
            prompt(client, notification_id)
        seconds = max(watch.first(ids, BURST_TIMEOUT_S, what=f"{len(ids)} notifications")) - sent
        delays = []
        for number in range(sequential):
            started = now()
            prompt(client, notification_id := f"bench_bare_{tag}_s{number}")
            delays.append(watch.need(notification_id, notification_id, ARRIVAL_TIMEOUT_S) - started)
            time.sleep(PAUSE_S)
    return {
        "prompts_per_s": burst / seconds,
        "calls_per_s": 2 * burst / seconds,
        "sequential_ms": percentiles(delays),
    }


def measure(hass: Any, work: Path, *, burst_of: int, sequential: int) -> dict[str, Any]:
    """Both measurements against ``hass``, with a daemon and a broker of their own."""
    tag = f"h{uuid.uuid4().hex[:6]}"
    total = WARMUP + burst_of + sequential
    sections = {
        "mqtt": {"client_id": f"needlecare-{tag}"},
        "homeassistant": {"url": hass.url, "token": hass.token},
        "profiles": {f"{tag}{n:03d}": {"timezone": "Europe/Berlin"} for n in range(total)},
        "protocol": only_soothe(["dashboard"]),
    }
    with running_daemon(work, **sections) as daemon:
        daemon.wait_for("homeassistant_listening")
        wait_idle(daemon.pid)
        with (
            store_of(daemon.db) as reader,
            NotificationWatch(hass) as watch,
            Peer(daemon.broker, f"bench-ha-{tag}") as peer,
        ):
            sessions = Sessions(
                peer,
                reader,
                tag,
                profile=lambda n: f"{tag}{n:03d}",
                device=lambda n: f"{tag}pen{n:03d}",
            )
            one_at_a_time(sessions, watch, range(WARMUP))
            bursted = burst(sessions, watch, range(WARMUP, WARMUP + burst_of), daemon.pid)
            wait_idle(daemon.pid)
            progress(f"ha_delivery: {sequential} sessions one at a time")
            samples = one_at_a_time(sessions, watch, range(WARMUP + burst_of, total))
            progress("ha_delivery: the same calls without the daemon")
            bare = measure_bare(hass, watch, burst=burst_of, sequential=sequential)
        exit_code = daemon.stop()
    return {
        "profiles": total,
        "burst": bursted,
        "sequential_ms": percentiles([s["from_publish_s"] for s in samples]),
        "sequential_split_ms": daemon.split(
            samples, {"to_delivered": "reminder_delivered"}, "to_announced"
        ),
        "bare": bare,
        "throughput_ratio": bursted["prompts_per_s"] / bare["prompts_per_s"],
        "exit_code": exit_code,
    }


def run_measured(args: Any, work: Path) -> dict[str, Any]:
    given = getattr(args, "hass", None)
    running = own_homeassistant(work) if given is None else contextlib.nullcontext((given, None))
    with running as (hass, start_s):
        result = measure(hass, work, burst_of=args.burst, sequential=args.sequential)
    return {"machine": {"homeassistant": HA_VERSION}, "homeassistant_start_s": start_s, **result}


def run(*, burst: int, sequential: int, hass: Any = None, workdir: Path | None = None) -> Any:
    """The report against ``hass`` (the smoke test's), or a Home Assistant of our own."""
    args = SimpleNamespace(burst=burst, sequential=sequential, hass=hass)
    return BENCH.measure(args, workdir)  # type: ignore[arg-type]


TEXT = """\
Home Assistant delivery ({profiles} profiles, dashboard channel{started})
burst: {burst[sessions]} prompts in {burst[seconds]:.2f} s = {burst[prompts_per_s]:.1f} \
prompts/s ({burst[ha_calls_per_s]:.1f} Home Assistant calls/s)
bare (the same calls from one client, no daemon): {bare[prompts_per_s]:.1f} prompts/s \
({bare[calls_per_s]:.1f} calls/s); needlecare / bare: {throughput_ratio:.0%}
{delays}"""


def render(report: dict[str, Any]) -> str:
    rows = [
        ("burst: ends published -> each notification", report["burst"]["delay_ms"]),
        ("one at a time: end published -> notification", report["sequential_ms"]),
    ]
    if split_ms := report["sequential_split_ms"]:
        rows += [
            ("  of which: -> reminder delivered (daemon log)", split_ms["to_delivered"]),
            ("  of which: delivered -> announced by HA", split_ms["to_announced"]),
        ]
    rows.append(("bare: create + event calls -> notification", report["bare"]["sequential_ms"]))
    start = report["homeassistant_start_s"]
    started = "" if start is None else f"; Home Assistant started in {start:.1f} s"
    return TEXT.format_map(report | {"started": started, "delays": pct_table(rows)})


OPTIONS = {
    "--burst": (int, 200, "sessions ended at once"),
    "--sequential": (int, 50, "sessions one at a time"),
}
BENCH = Bench(
    "ha_delivery", __doc__, run_measured, render, options=OPTIONS, ok=lambda r: r["exit_code"] == 0
)
main = BENCH.main

if __name__ == "__main__":
    raise SystemExit(main())
