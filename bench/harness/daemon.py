"""The daemon as a process (``needlecare run``), its config, its store (seeded with pending
reminders, read while it runs), and sessions driven through it."""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Self

import yaml

from bench.harness.mqtt import Peer, pad_json, running_broker
from bench.harness.report import (
    TIMEOUT_S,
    BenchError,
    Stamps,
    now,
    percentiles,
    poll,
    wall_clock,
)
from needlecare_integrations.broker import MosquittoBroker

ONE_PROFILE = {"alice": {"timezone": "Europe/Berlin"}}
# A log event that marks a stage of a prompt: the field naming the session or reminder, and
# the line's other fields (a session is also recorded when it starts).
LOG_MARKS = {
    "session_recorded": ("session_id", {"status": "completed"}),
    "reminder_delivered": ("reminder_id", {}),
}
YEAR = timedelta(days=365)
_INSERT = (
    "INSERT INTO reminders (id, session_id, profile, kind, title, message, severity, channels,"
    " needs_ack, escalation, status, due_at, planned_at, created_at)"
    " VALUES (?, NULL, 'alice', 'window_open', 'Next session window open',"
    " 'You can plan your next session.', 'info', '[\"mirror\"]', 0, '[]', 'pending', ?, ?, ?)"
)
PAUSE_S = 0.005  # between a session's start and its end, as between measurements


def log_stamp(entry: dict[str, Any]) -> datetime:
    """The wall-clock time of a daemon log line."""
    return datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00"))


class Daemon:
    """``needlecare run`` as a process, its JSON log lines stamped as they come; restartable."""

    def __init__(self, workdir: Path, config: dict[str, Any], broker: MosquittoBroker) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.broker = broker
        self.workdir, self.db = workdir, Path(config["store"]["path"])
        self.config_path, self.log_path = workdir / "needlecare.yaml", workdir / "daemon.log"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.stamps = Stamps()  # each log line's event, as it came
        self.spawned_at = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BenchError("the daemon was not started")
        return self._process.pid

    def start(self) -> Self:
        """Spawn ``needlecare run -c CONFIG``; forget the stamps of an earlier start."""
        self.stamps = Stamps()
        self.spawned_at = now()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "needlecare", "run", "-c", str(self.config_path)],
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
                self.stamps.add(_parse(line).get("event"), stamp)
        self.stamps.close()

    def wait_for(self, event: str, count: int = 1, timeout: float = TIMEOUT_S) -> float:
        """The stamp of the ``count``-th ``event`` log line since the start."""
        try:
            return self.stamps.need(event, f"{event} from the daemon", timeout, count)
        except BenchError as error:
            raise BenchError(f"{error}:\n{self.log_tail()}") from error

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def log_events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every JSON log line (named ``name``) of every start so far."""
        entries = [_parse(line) for line in self.log_path.read_bytes().splitlines()]
        return [e for e in entries if e and (name is None or e.get("event") == name)]

    def split(self, samples: Sequence[Any], marks: Mapping[str, str], rest: str) -> Any:
        """Each sample's ``from_publish_s`` cut at the log lines of ``marks`` (stage -> event):
        sent -> the first event -> ... -> the last, then ``rest`` to the receipt; in ms."""
        stamps = {event: self._first_lines(event) for event in marks.values()}
        stages: dict[str, list[float]] = {name: [] for name in [*marks, rest]}
        for sample in samples:
            at = [stamps[event].get(sample[LOG_MARKS[event][0]]) for event in marks.values()]
            if None in at:
                continue
            edges = [sample["sent_wall"], *at]
            for name, begun, ended in zip(stages, edges, edges[1:], strict=False):
                stages[name].append((ended - begun).total_seconds())
            stages[rest].append(sample["from_publish_s"] - (at[-1] - edges[0]).total_seconds())
        return {name: percentiles(values) for name, values in stages.items() if values}

    def _first_lines(self, event: str) -> dict[str, datetime]:
        """When each session or reminder first had an ``event`` line (see LOG_MARKS)."""
        key, where = LOG_MARKS[event]
        found: dict[str, datetime] = {}
        for entry in self.log_events(event):
            if all(entry.get(field) == value for field, value in where.items()):
                found.setdefault(str(entry.get(key)), log_stamp(entry))
        return found

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; the exit code of the SIGTERM, else None."""
        process, self._process = self._process, None
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
        return code

    def restart_clean(self) -> None:
        if self.stop() != 0:
            raise BenchError(f"the daemon did not stop cleanly:\n{self.log_tail()}")


def _parse(line: bytes) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def wait_online(broker: MosquittoBroker, timeout: float = TIMEOUT_S) -> None:
    """Wait for the retained ``online``: sent after the subscriptions on the same connection,
    so they are in place (``mqtt_connected`` in the log does not say that)."""
    client_id = f"bench-status-{os.getpid()}-{threading.get_ident()}"
    said = Stamps()
    with Peer(broker, client_id, on_message=lambda m, stamp: said.add(m.payload, stamp)) as peer:
        peer.subscribe("needlecare/status")
        said.need(b"online", "online from the daemon", timeout)


def daemon_config(broker: MosquittoBroker, db: Path, **sections: Any) -> dict[str, Any]:
    """A bench config: JSON logs at INFO (per-message logging off), the given sections."""
    config: dict[str, Any] = {
        "store": {"path": str(db)},
        "mqtt": {"host": broker.host, "port": broker.port},
        "logging": {"level": "INFO", "format": "json"},
    }
    for name, section in sections.items():
        merge = isinstance(section, dict) and isinstance(config.get(name), dict)
        config[name] = {**config[name], **section} if merge else section
    return config


def devices(count: int) -> dict[str, Any]:
    """``count`` profiles and a device for each: ``profiles=`` and ``devices=`` of a config."""
    profiles = {f"p{d:02d}": ONE_PROFILE["alice"] for d in range(count)}
    owned = {f"pen{d:02d}": {"owner": f"p{d:02d}"} for d in range(count)}
    return {"profiles": profiles, "devices": owned}


def only_soothe(channels: Sequence[str]) -> dict[str, Any]:
    """A protocol override: one ``soothe`` prompt per session, on ``channels``, nothing else."""
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

    def at_least(
        self,
        sql: str,
        count: int,
        timeout: float = TIMEOUT_S,
        poll_s: float = 0.01,
        params: Sequence[Any] = (),
    ) -> float:
        """Poll ``sql`` until it gives ``count`` or more; the stamp of the poll that saw it."""
        done = lambda: now() if (self.scalar(sql, params) or 0) >= count else None  # noqa: E731
        return poll(done, f"{sql!r} below {count}", timeout, poll_s)


def wait_for_store(db: Path, timeout: float = TIMEOUT_S) -> StoreReader:
    """A reader once the daemon has created and migrated the store."""

    def migrated() -> StoreReader | None:
        with contextlib.suppress(sqlite3.Error):
            reader = StoreReader(db)
            if reader.scalar("PRAGMA user_version"):
                return reader
            reader.__exit__()
        return None

    return poll(migrated, f"no store at {db}", timeout)


class Sessions:
    """Sessions through the daemon, session n on ``device(n)`` for ``profile(n)``."""

    def __init__(
        self,
        peer: Peer,
        reader: StoreReader,
        tag: str,
        *,
        profile: Callable[[int], str],
        device: Callable[[int], str],
    ) -> None:
        self.peer, self.reader, self.tag = peer, reader, tag
        self.profile, self.device = profile, device

    def _publish(self, numbers: Sequence[int], kind: str, **fields: Any) -> float:
        """Publish, then wait for every PUBACK; the last one's stamp."""
        mids = []
        for n in numbers:
            body = {
                "event_id": f"{self.tag}-{kind[8]}{n}",
                "type": kind,
                "profile": self.profile(n),
            }
            topic = f"needlecare/device/{self.device(n)}/event"
            mids.append(self.peer.publish(topic, pad_json({**body, **fields}, 200)))
        return [self.peer.acked_at(mid) for mid in mids][-1]

    def session_id(self, number: int) -> str:
        from needlecare.domain.sessions import session_id_for  # noqa: PLC0415

        return session_id_for(f"{self.tag}-s{number}")

    def soothe(self, number: int) -> str:
        """The id of session ``number``'s soothe reminder."""
        from needlecare.domain.planning import reminder_id  # noqa: PLC0415

        return reminder_id(self.session_id(number), "soothe")

    def start(self, numbers: Sequence[int], poll_s: float = 0.002) -> None:
        """Publish the starts and wait until the store holds them all."""
        self._publish(numbers, "session_started")
        ids = [self.session_id(n) for n in numbers]
        sql = f"SELECT count(*) FROM sessions WHERE id IN ({','.join('?' * len(ids))})"  # noqa: S608
        self.reader.at_least(sql, len(ids), poll_s=poll_s, params=ids)

    def end(self, numbers: Sequence[int]) -> tuple[float, float]:
        """Publish the ends back to back; the stamps of the first publish and the last PUBACK."""
        sent = now()
        return sent, self._publish(numbers, "session_ended", passes=4, duration_s=900)

    def prompt(self, number: int, prompts: Stamps, prefix: str = "", timeout: float = 10.0) -> Any:
        """Session ``number`` as a person has it: the start (waited for until stored), a pause,
        the end; from the end's publish and PUBACK to its ``soothe`` in ``prompts`` (by
        ``prefix`` + reminder id). None when it did not come within ``timeout``."""
        self.start([number], poll_s=0.001)
        time.sleep(PAUSE_S)
        sent_wall, (sent, puback) = wall_clock(), self.end([number])
        arrived = prompts.first([prefix + self.soothe(number)], timeout)
        if arrived is None:
            return None
        return {
            "session_id": self.session_id(number),
            "reminder_id": self.soothe(number),
            "sent_wall": sent_wall,
            "from_publish_s": arrived[0] - sent,
            "from_puback_s": arrived[0] - puback,
        }


def _rows(count: int, now: datetime) -> Iterator[tuple[str, str, str, str]]:
    """Pending reminders due from an hour from now to a year from now, in due order."""
    from needlecare_integrations.store.timestamps import to_db  # noqa: PLC0415

    created, first, step = to_db(now), now + timedelta(hours=1), YEAR / max(count, 1)
    for i in range(count):
        due = to_db(first + step * i)
        yield f"bench-{i:07d}", due, due, created


def seed_reminders(
    path: Path, count: int, now: datetime, rows: Iterator[Any] | None = None
) -> float:
    """Create the schema with the store, then insert ``count`` reminders in one transaction."""
    from needlecare_integrations.store import SqliteStore  # noqa: PLC0415

    if not path.exists():
        SqliteStore.open(path, now=now).close()
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # seeding only; the daemon opens with FULL
        conn.execute("BEGIN")
        conn.executemany(_INSERT, _rows(count, now) if rows is None else rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def file_sizes(db: Path) -> dict[str, int]:
    """The sizes of the store's three files: ``db``, ``-wal``, ``-shm``."""
    paths = {"db": db, "-wal": Path(f"{db}-wal"), "-shm": Path(f"{db}-shm")}
    return {key: path.stat().st_size if path.exists() else 0 for key, path in paths.items()}


@contextmanager
def running_daemon(work: Path, *, start: bool = True, **sections: Any) -> Iterator[Daemon]:
    """A broker of its own and the daemon on ``work/needlecare.db``; online unless not ``start``."""
    with running_broker(work / "broker") as broker:
        config = daemon_config(broker, work / "needlecare.db", **sections)
        daemon = Daemon(work / "daemon", config, broker)
        try:
            if start:
                daemon.start()
                wait_online(broker)
                wait_for_store(daemon.db).__exit__()
            yield daemon
        except BenchError as error:
            raise BenchError(f"{error}\n--- the daemon's log ends:\n{daemon.log_tail()}") from error
        finally:
            daemon.stop()
