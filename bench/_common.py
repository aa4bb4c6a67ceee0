"""What the benchmarks share: the machine, figures, tables, processes, the daemon, MQTT peers.

Times that cross process boundaries are ``time.monotonic()``: CLOCK_MONOTONIC is one
clock for every process on Linux, so a stamp taken in a publisher process can be
subtracted from one taken here.
"""

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Self

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from needlecare_integrations.broker import MosquittoBroker

TIMEOUT_S = 60.0
KIB_PER_MIB = 1024
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_POLL_S = 0.01
_PAD = "x"


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says what was missing."""


def wall_clock() -> datetime:
    """Aware UTC now. The bench is not the daemon: it stamps results itself."""
    return datetime.now(UTC)  # noqa: TID251 - no injected Clock outside the daemon


def now() -> float:
    """A stamp comparable across processes (CLOCK_MONOTONIC)."""
    return time.monotonic()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quiet_logs() -> None:
    """Only warnings from the store opened in this process (seeding logs its migrations)."""
    import structlog  # noqa: PLC0415 - only the benches that open a store need it

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


# -- figures and output ------------------------------------------------------------------


def percentiles(seconds: Sequence[float], scale: float = 1e3) -> dict[str, float]:
    """n, p50, p90, p99, max and mean of durations, multiplied by ``scale`` (1e3: ms)."""
    if not seconds:
        raise BenchError("no samples")
    if len(seconds) == 1:
        only = seconds[0] * scale
        return {"n": 1, "p50": only, "p90": only, "p99": only, "max": only, "mean": only}
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {
        "n": len(seconds),
        "p50": statistics.median(seconds) * scale,
        "p90": cuts[89] * scale,
        "p99": cuts[98] * scale,
        "max": max(seconds) * scale,
        "mean": statistics.fmean(seconds) * scale,
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def write_report(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def bench_parser(
    module: str, doc: str | None, *, out: Path, workdir_help: str
) -> argparse.ArgumentParser:
    """A bench's command line with the options they all have: --out and --workdir."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=out, help="the JSON report")
    parser.add_argument("--workdir", type=Path, default=None, help=workdir_help)
    return parser


def finish(report: dict[str, Any], out: Path, render: Callable[[dict[str, Any]], str]) -> None:
    """Write the JSON report, then print the tables and where the report went."""
    write_report(report, out)
    print(render(report))
    print(f"\nwritten to {out}")


def _filesystem(path: Path) -> str:
    done = subprocess.run(
        ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def load_average() -> float:
    """The 1-minute load average: other work on a shared machine shows here."""
    return os.getloadavg()[0]


def source_state() -> dict[str, Any]:
    """The commit and any uncommitted change to the product code (service/, integrations/)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        return done.stdout

    diff = git("diff", "HEAD", "--", "service", "integrations")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip() or "unknown",
        "product_files_changed": len(
            git("status", "--porcelain", "--", "service", "integrations").splitlines()
        ),
        "product_fingerprint": hashlib.sha256(diff.encode()).hexdigest()[:12],
    }


def machine(
    workdir: Path | None = None, *, source_before: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the figures were measured on; ``workdir``'s file system decides what fsync costs.

    With ``source_before`` (taken at the start), says whether the product code changed
    during the run: on a shared checkout, figures from such a run mix two versions.
    """
    mosquitto = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False)
    where = workdir if workdir is not None else Path(tempfile.gettempdir())
    source = source_state()
    changed = None if source_before is None else source_before != source
    return {
        **source,
        "source_changed_during_run": changed,
        "load_average": load_average(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": _cpu_model(),
        "memory_mib": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "paho_mqtt": metadata.version("paho-mqtt"),
        "pydantic": metadata.version("pydantic"),
        "mosquitto": (mosquitto.stdout.splitlines() or [""])[0],
        "workdir_fs": _filesystem(where),
    }


@contextmanager
def workspace(workdir: Path | None, prefix: str) -> Iterator[Path]:
    """``workdir`` (created), or a temporary directory removed afterwards."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as temp:
        yield Path(temp)


@contextmanager
def running_broker(data_dir: Path) -> Iterator[MosquittoBroker]:
    """A Mosquitto of our own (``set_tcp_nodelay``, big queues), persistence off."""
    if shutil.which("mosquitto") is None:
        raise BenchError("mosquitto not found on PATH: apt-get install mosquitto")
    broker = MosquittoBroker(data_dir=data_dir, port=free_port(), persistence=False)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


# -- processes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadSample:
    tid: int
    comm: str
    cpu_s: float
    voluntary: int
    nonvoluntary: int


def _stat_fields(path: Path) -> list[str]:
    text = path.read_text(encoding="ascii")
    return text[text.rindex(")") + 2 :].split()  # after "pid (comm) "


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), in seconds."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def status_value(path: Path, key: str) -> int:
    for line in path.read_text(encoding="ascii").splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise BenchError(f"no {key} in {path}")


def write_bytes(pid: int | str = "self") -> int:
    """Bytes the process made the kernel send to storage (``/proc/PID/io``).

    Counted when a page of the page cache turns dirty: a page rewritten and fsynced
    again counts again, a page rewritten before writeback does not.
    """
    for line in Path(f"/proc/{pid}/io").read_text(encoding="utf-8").splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise BenchError(f"no write_bytes in /proc/{pid}/io")


def rss_mib(pid: int, key: str = "VmRSS") -> float:
    """A ``VmRSS``-style line of /proc/<pid>/status, in MiB."""
    return status_value(Path(f"/proc/{pid}/status"), key) / KIB_PER_MIB


def thread_samples(pid: int) -> dict[int, ThreadSample]:
    """CPU time and context switches of each thread of ``pid``."""
    samples = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = _stat_fields(task / "stat")
            status = task / "status"
            samples[int(task.name)] = ThreadSample(
                tid=int(task.name),
                comm=(task / "comm").read_text(encoding="utf-8").strip(),
                cpu_s=(int(fields[11]) + int(fields[12])) / _CLOCK_TICKS,
                voluntary=status_value(status, "voluntary_ctxt_switches"),
                nonvoluntary=status_value(status, "nonvoluntary_ctxt_switches"),
            )
        except FileNotFoundError:
            continue  # the thread ended between the listing and the read
    return samples


def wait_idle(pid: int, *, quiet_s: float = 0.5, timeout: float = TIMEOUT_S) -> float:
    """Wait until ``pid`` used no CPU for ``quiet_s``; the seconds waited."""
    started = now()
    last, quiet_since = cpu_seconds(pid), now()
    while now() - quiet_since < quiet_s:
        if now() - started > timeout:
            raise BenchError(f"pid {pid} still busy after {timeout} s")
        time.sleep(0.05)
        used = cpu_seconds(pid)
        if used != last:
            last, quiet_since = used, now()
    return now() - started


_PY_SPY_THREAD = re.compile(r'^Thread (0x[0-9A-Fa-f]+|\d+) \((\w+)\): "(.*)"', re.MULTILINE)


def python_thread_names(pid: int) -> dict[int, str]:
    """Native thread id -> Python thread name, from ``py-spy dump``; {} without py-spy."""
    spy = py_spy()
    if spy is None:
        return {}
    command = [spy, "dump", "--pid", str(pid)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    names = {}
    for match in _PY_SPY_THREAD.finditer(done.stdout):
        raw = match[1]
        if not raw.startswith("0x"):
            names[int(raw)] = match[3]
    return names


def py_spy() -> str | None:
    """The py-spy executable (``pip install py-spy`` into the venv), or None."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class PySpyRecord:
    """``py-spy record`` attached to ``pid``: collapsed stacks per thread, sampled non-blocking.

    Non-blocking sampling never pauses the target, at the price of an odd torn stack.
    """

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        spy = py_spy()
        if spy is None:
            raise BenchError("py-spy not found: .venv/bin/pip install py-spy")
        self.out = out
        command = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
        command += ["--threads", "--nonblocking", "--output", str(out)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> Path:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        self._process.wait(30)
        return self.out


_LINE_NUMBER = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    return _LINE_NUMBER.sub(")", frame)


def profile_summary(raw: Path, *, within: str, top: int = 15) -> dict[str, Any]:
    """The hottest functions (self and inclusive, line numbers merged) in stacks through ``within``.

    Shares are of the samples that pass through ``within`` (e.g. ``CoreLoop.run``), so
    start-up and idle threads do not dilute them.
    """
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    threads: dict[str, int] = {}
    samples = 0
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        count = int(count_text)
        threads[frames[0]] = threads.get(frames[0], 0) + count
        start = next((i for i, frame in enumerate(frames) if within in frame), None)
        if start is None:
            continue
        samples += count
        functions = [_function(frame) for frame in frames[start:]]
        own[functions[-1]] = own.get(functions[-1], 0) + count
        for name in set(functions[1:]):
            total[name] = total.get(name, 0) + count

    def shares(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
        return [(name, count / samples) for name, count in ranked]

    return {
        "within": within,
        "samples": samples,
        "threads": threads,
        "self": shares(own),
        "inclusive": shares(total),
    }


def _child_main(
    target: Callable[..., Any],
    args: tuple[Any, ...],
    results: "multiprocessing.Queue[tuple[str, Any]]",
    ready: Any,
) -> None:
    try:
        value = target(*args, ready=ready.set)
    except BaseException:  # the parent shows it: a child's traceback is lost otherwise
        results.put(("error", traceback.format_exc()))
        raise
    results.put(("ok", value))


class Child:
    """``target(*args, ready=callback)`` in a fresh (spawned) process; its return value back.

    The target calls ``ready()`` once it is set up (connected, subscribed), so the parent
    can start the next actor only then.
    """

    def __init__(self, target: Callable[..., Any], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._results: multiprocessing.Queue[tuple[str, Any]] = context.Queue()
        self._ready = context.Event()
        self._process = context.Process(
            target=_child_main, args=(target, args, self._results, self._ready), daemon=True
        )
        self._name = getattr(target, "__name__", repr(target))

    def start(self) -> Self:
        self._process.start()
        return self

    def wait_ready(self, timeout: float = TIMEOUT_S) -> None:
        if not self._ready.wait(timeout):
            self.kill()
            raise BenchError(f"{self._name} was not ready within {timeout} s")

    def result(self, timeout: float = TIMEOUT_S * 5) -> Any:
        try:
            status, value = self._results.get(timeout=timeout)
        except Exception as error:
            self.kill()
            raise BenchError(f"{self._name} gave no result within {timeout} s") from error
        self._process.join(10)
        if status != "ok":
            raise BenchError(f"{self._name} failed:\n{value}")
        return value

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join(10)


# -- the daemon ---------------------------------------------------------------------------------


def _event_name(line: bytes) -> str | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    name = entry.get("event") if isinstance(entry, dict) else None
    return name if isinstance(name, str) else None


class Daemon:
    """``python -m needlecare run`` as a process; its JSON log lines are stamped as they come.

    The same workdir, config and store serve every start, so it can be stopped and
    started again (a persistent MQTT session then holds what was published meanwhile).
    """

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config = config
        self.db = Path(config["store"]["path"])
        self.config_path = workdir / "needlecare.yaml"
        self.log_path = workdir / "daemon.log"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.launcher: list[str] = [sys.executable, "-m", "needlecare"]
        self.stamps: dict[str, list[float]] = {}
        self.spawned_at = 0.0
        self._changed = threading.Condition()
        self._eof = False
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BenchError("the daemon was not started")
        return self._process.pid

    def start(self) -> Self:
        """Spawn ``launcher run -c CONFIG``; forget the stamps of an earlier start.

        ``launcher`` may be changed first, e.g. to ``python -m cProfile -o FILE -m needlecare``.
        """
        command = [*self.launcher, "run", "-c", str(self.config_path)]
        with self._changed:
            self.stamps, self._eof = {}, False
        self.spawned_at = now()
        self._process = subprocess.Popen(
            command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self._process.stderr,))
        self._reader.start()
        return self

    def _read(self, stream: IO[bytes]) -> None:
        with stream, self.log_path.open("ab", buffering=0) as log:
            for line in stream:
                stamp = now()
                log.write(line)
                event = _event_name(line)
                with self._changed:
                    if event is not None:
                        self.stamps.setdefault(event, []).append(stamp)
                    self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def count(self, event: str) -> int:
        with self._changed:
            return len(self.stamps.get(event, ()))

    def wait_for(self, event: str, count: int = 1, timeout: float = TIMEOUT_S) -> float:
        """The stamp of the ``count``-th ``event`` log line since the start."""
        with self._changed:
            self._changed.wait_for(
                lambda: len(self.stamps.get(event, ())) >= count or self._eof, timeout
            )
            stamps = self.stamps.get(event, [])
        if len(stamps) < count:
            raise BenchError(f"no {event} from the daemon within {timeout} s:\n{self.log_tail()}")
        return stamps[count - 1]

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def log_events(self) -> list[dict[str, Any]]:
        """Every JSON log line of every start so far."""
        entries = []
        for line in self.log_path.read_bytes().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; the exit code of the SIGTERM, else None."""
        process = self._process
        if process is None:
            return None
        code: int | None = process.poll()
        if code is None:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = None
        if self._reader is not None:
            self._reader.join()
        self._process = None
        return code


def wait_online(broker: MosquittoBroker, timeout: float = TIMEOUT_S) -> None:
    """Wait until the daemon's retained status says ``online``.

    The daemon subscribes before it publishes ``online`` on the same connection, and
    the broker handles one connection's packets in order: once ``online`` is there,
    so are the subscriptions, and an event published now reaches the daemon. Its
    ``mqtt_connected`` log line alone does not say that.
    """
    online = threading.Event()

    def on_message(message: mqtt.MQTTMessage, _stamp: float) -> None:
        if message.payload == b"online":
            online.set()

    client_id = f"bench-status-{os.getpid()}-{threading.get_ident()}"
    with Peer(broker.host, broker.port, client_id=client_id, on_message=on_message) as peer:
        peer.subscribe("needlecare/status")
        if not online.wait(timeout):
            raise BenchError(f"the daemon did not say online within {timeout} s")


def daemon_config(broker: MosquittoBroker, db: Path, **sections: Any) -> dict[str, Any]:
    """A bench config: JSON logs at INFO (per-message logging off), the given sections."""
    config: dict[str, Any] = {
        "store": {"path": str(db)},
        "mqtt": {"host": broker.host, "port": broker.port},
        "logging": {"level": "INFO", "format": "json"},
    }
    for name, section in sections.items():
        if isinstance(section, dict) and isinstance(config.get(name), dict):
            config[name] = {**config[name], **section}
        else:
            config[name] = section
    return config


def only_soothe(channels: Sequence[str]) -> dict[str, Any]:
    """A protocol override: one ``soothe`` prompt per session, on ``channels``, nothing else.

    Every other step and guard is disabled, so each session end makes exactly one prompt.
    """
    from needlecare.domain.protocol import STEP_NAMES  # noqa: PLC0415 - keeps imports light

    steps: dict[str, Any] = {name: {"enabled": False} for name in STEP_NAMES if name != "soothe"}
    steps["soothe"] = {"channels": list(channels), "escalation": []}
    return {"steps": steps}


class StoreReader:
    """A read-only connection to the daemon's store (WAL lets it read while the daemon writes)."""

    def __init__(self, db: Path) -> None:
        self._conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 5000")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql, params).fetchall())

    def wait_until(
        self,
        sql: str,
        done: Callable[[Any], bool],
        *,
        params: Sequence[Any] = (),
        timeout: float = TIMEOUT_S,
        poll_s: float = _POLL_S,
    ) -> float:
        """Poll ``sql`` until ``done(value)``; the stamp of the first poll that saw it."""
        deadline = now() + timeout
        while True:
            value = self.scalar(sql, params)
            stamp = now()
            if done(value):
                return stamp
            if stamp > deadline:
                raise BenchError(f"{sql!r} still gave {value!r} after {timeout} s")
            time.sleep(poll_s)


def wait_for_store(db: Path, timeout: float = TIMEOUT_S) -> StoreReader:
    """A reader once the daemon has created and migrated the store."""
    deadline = now() + timeout
    while True:
        try:
            reader = StoreReader(db)
            if reader.scalar("PRAGMA user_version"):
                return reader
            reader.__exit__()
        except sqlite3.Error:
            pass
        if now() > deadline:
            raise BenchError(f"no store at {db} after {timeout} s")
        time.sleep(0.05)


# -- MQTT peers ----------------------------------------------------------------------------------


def pad_json(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON, padded to ``size`` bytes with a ``note`` field the daemon ignores."""
    raw = json.dumps(body, separators=(",", ":"))
    overhead = len(json.dumps({**body, "note": ""}, separators=(",", ":")))
    if size > overhead:
        raw = json.dumps({**body, "note": _PAD * (size - overhead)}, separators=(",", ":"))
    return raw.encode()


def set_nodelay(client: mqtt.Client) -> None:
    """paho never disables Nagle's algorithm; a bench peer must, or it measures 40 ms timers."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Peer:
    """A paho MQTT 5 client with TCP_NODELAY, its network loop running, PUBACK stamps kept."""

    def __init__(
        self,
        broker_host: str,
        broker_port: int,
        *,
        client_id: str,
        clean_start: bool = True,
        session_expiry: int | None = None,
        on_message: Callable[[mqtt.MQTTMessage, float], None] | None = None,
        on_puback: Callable[[int, float], None] | None = None,
        max_inflight: int = 20,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(max_inflight)
        self._address = (broker_host, broker_port)
        self._clean_start = clean_start
        self._session_expiry = session_expiry
        self._on_message = on_message
        self._on_puback = on_puback
        self._changed = threading.Condition()
        self._acked: dict[int, float] = {}
        self._subacks: set[int] = set()
        self.connected_at: float | None = None
        self.session_present = False
        self.client.on_connect = self._connected
        self.client.on_publish = self._published
        self.client.on_subscribe = self._subscribed
        self.client.on_message = self._message

    def __enter__(self) -> Self:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self._session_expiry is not None:
            properties.SessionExpiryInterval = self._session_expiry
        host, port = self._address
        self.client.connect(host, port, clean_start=self._clean_start, properties=properties)
        self.client.loop_start()
        with self._changed:
            if not self._changed.wait_for(lambda: self.connected_at is not None, 10):
                self.__exit__()
                raise BenchError(f"no CONNACK from {host}:{port}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, topic: str, qos: int = 1) -> None:
        _, mid = self.client.subscribe(topic, qos)
        with self._changed:
            if not self._changed.wait_for(lambda: mid in self._subacks, 10):
                raise BenchError(f"no SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Queue a publish; its message id (see ``acked_at``)."""
        return int(self.client.publish(topic, payload, qos=qos).mid)

    def acked_at(self, mid: int, timeout: float = 10.0) -> float:
        """Wait for the PUBACK of ``mid``; the stamp it arrived at."""
        with self._changed:
            if not self._changed.wait_for(lambda: mid in self._acked, timeout):
                raise BenchError(f"no PUBACK for message {mid} within {timeout} s")
            return self._acked.pop(mid)

    def _connected(self, client: mqtt.Client, _u: Any, flags: Any, *_: Any) -> None:
        set_nodelay(client)
        with self._changed:
            self.connected_at = now()
            self.session_present = bool(flags.session_present)
            self._changed.notify_all()

    def _published(self, _c: mqtt.Client, _u: Any, mid: int, *_: Any) -> None:
        stamp = now()
        if self._on_puback is not None:
            self._on_puback(mid, stamp)
            return
        with self._changed:
            self._acked[mid] = stamp
            self._changed.notify_all()

    def _subscribed(self, _c: mqtt.Client, _u: Any, mid: int, *_: Any) -> None:
        with self._changed:
            self._subacks.add(mid)
            self._changed.notify_all()

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        stamp = now()
        if self._on_message is not None:
            try:
                self._on_message(message, stamp)
            except Exception:  # never raise into paho's network thread
                traceback.print_exc()
