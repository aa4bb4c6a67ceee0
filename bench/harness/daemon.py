"""The daemon as a process (``needlecare run``), its config, and a read-only view of its store."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Self

import yaml

from bench.harness.mqtt import Peer, pad_json, running_broker
from bench.harness.report import BenchError, now
from needlecare_integrations.broker import MosquittoBroker

TIMEOUT_S = 60.0
ONE_PROFILE = {"alice": {"timezone": "Europe/Berlin"}}


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
        """Spawn ``needlecare run -c CONFIG``; forget the stamps of an earlier start."""
        with self._changed:
            self.stamps, self._eof = {}, False
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
                event = _parse(line).get("event")
                with self._changed:
                    if isinstance(event, str):
                        self.stamps.setdefault(event, []).append(stamp)
                    self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

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

    def log_events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every JSON log line (named ``name``) of every start so far."""
        entries = [_parse(line) for line in self.log_path.read_bytes().splitlines()]
        return [e for e in entries if e and (name is None or e.get("event") == name)]

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
    online = threading.Event()
    client_id = f"bench-status-{os.getpid()}-{threading.get_ident()}"
    on_message = lambda m, _s: online.set() if m.payload == b"online" else None  # noqa: E731
    with Peer(broker, client_id, on_message=on_message) as peer:
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
        merge = isinstance(section, dict) and isinstance(config.get(name), dict)
        config[name] = {**config[name], **section} if merge else section
    return config


def devices(count: int, prefix: str = "pen", owner: str = "p") -> dict[str, Any]:
    """``count`` profiles and a device for each: ``profiles=`` and ``devices=`` of a config."""
    profiles = {f"{owner}{d:02d}": ONE_PROFILE["alice"] for d in range(count)}
    owned = {f"{prefix}{d:02d}": {"owner": f"{owner}{d:02d}"} for d in range(count)}
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

    def wait_until(self, sql: str, done: Callable[[Any], bool], *, params: Sequence[Any] = (),
                   timeout: float = TIMEOUT_S, poll_s: float = 0.01) -> float:  # fmt: skip
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

    def at_least(self, sql: str, count: int, timeout: float = TIMEOUT_S, **kw: Any) -> float:
        return self.wait_until(sql, lambda n: n is not None and n >= count, timeout=timeout, **kw)


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


class Sessions:
    """Sessions through the daemon, session n on ``device(n)`` for ``profile(n)``."""

    def __init__(self, peer: Peer, reader: StoreReader, tag: str, *,
                 profile: Callable[[int], str], device: Callable[[int], str]) -> None:  # fmt: skip
        self.peer, self.reader, self.tag = peer, reader, tag
        self.profile, self.device = profile, device

    def _publish(self, numbers: Sequence[int], kind: str, **fields: Any) -> float:
        """Publish, then wait for every PUBACK; the last one's stamp."""
        mids = [
            self.peer.publish(f"needlecare/device/{self.device(n)}/event", pad_json(
                {"event_id": f"{self.tag}-{kind[8]}{n}", "type": kind,
                 "profile": self.profile(n), **fields}, 200))
            for n in numbers
        ]  # fmt: skip
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
        self.reader.wait_until(sql, lambda n: n == len(ids), params=ids, poll_s=poll_s)

    def end(self, numbers: Sequence[int]) -> tuple[float, float]:
        """Publish the ends back to back; the stamps of the first publish and the last PUBACK."""
        sent = now()
        return sent, self._publish(numbers, "session_ended", passes=4, duration_s=900)


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
