"""Run a Mosquitto broker as a child process, from a configuration we generate.

Used by ``needlecare run --broker`` for trials and by the integration tests. The
configuration removes the Mosquitto defaults that lose data (a 1,000-message queue
limit, persistence saved every 30 minutes) and turns Nagle's algorithm off.
"""

import contextlib
import os
import pwd
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

CONFIG_NAME = "mosquitto.conf"
LOG_NAME = "mosquitto.log"
OUTPUT_NAME = "mosquitto.out"  # stdout/stderr: errors raised before the log file opens
PERSISTENCE_NAME = "mosquitto.db"
_POLL_SECONDS = 0.005
_TAIL_BYTES = 8192
_RUNNING = re.compile(rb"mosquitto version \S+ running")


class BrokerError(RuntimeError):
    """The broker did not start or stop as asked; the message ends with its log."""


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """A second listener that speaks TLS, on the broker's host."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    port: int
    require_certificate: bool = True


def port_in_use(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class MosquittoBroker:
    """One ``mosquitto -c`` process whose configuration, log and state live in data_dir.

    start() returns once Mosquitto logs that it is running and every listener accepts
    connections. The process runs in its own session, so Ctrl-C reaches only our
    process, which can then stop the broker after the clients that use it.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        persistence: bool = True,
        password_file: Path | None = None,
        tls: BrokerTls | None = None,
        executable: str = "mosquitto",
        run_as: str | None = None,
        save_on_changes: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.persistence = persistence
        self.password_file = password_file
        self.tls = tls
        self.executable = executable
        # A user to drop to when started as root (None: whoever starts it).
        self.run_as = run_as
        # Save after every change instead of every second: the same durability for
        # queued messages, and an idle broker's log stays quiet.
        self.save_on_changes = save_on_changes
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        """The generated ``mosquitto.conf``."""
        return self.data_dir / CONFIG_NAME

    @property
    def log_path(self) -> Path:
        """Mosquitto's own log file (appended to across restarts)."""
        return self.data_dir / LOG_NAME

    @property
    def persistence_path(self) -> Path:
        """The file Mosquitto saves sessions, queued and retained messages to."""
        return self.data_dir / PERSISTENCE_NAME

    @property
    def is_running(self) -> bool:
        """Whether the broker process has been started and has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return self._process.pid if self._process is not None and self.is_running else None

    def render_config(self) -> str:
        """The configuration this broker runs with."""
        return "\n".join(_config_lines(self)) + "\n"

    def start(self, timeout: float = 5.0) -> None:
        """Start mosquitto; raise BrokerError, with its log, if it is not ready in time."""
        if self.is_running:
            raise BrokerError(f"mosquitto is already running (pid {self.pid})")
        for port in self._ports():
            if port_in_use(self.host, port):
                raise BrokerError(f"{self.host}:{port} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render_config(), encoding="utf-8")
        if self.run_as is not None and os.geteuid() == 0:
            _hand_over(self.data_dir, self.run_as)
        log_offset = _size(self.log_path)
        with (self.data_dir / OUTPUT_NAME).open("ab") as output:
            self._process = _spawn([self.executable, "-c", str(self.config_path)], output)
        self._wait_until_ready(self._process, log_offset, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Send SIGTERM (Mosquitto then saves its persistence) and wait for the exit.

        Raises BrokerError if it has not exited within timeout; it is then still
        running and kill() ends it.
        """
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired as error:
            message = f"mosquitto (pid {process.pid}) ignored SIGTERM for {timeout} s"
            raise BrokerError(self._with_log(message)) from error

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would: it saves nothing more."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()

    def restart(self, timeout: float = 5.0) -> None:
        """Stop and start again on the same ports with the same data directory."""
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop; if SIGTERM does not work in time, kill and re-raise the BrokerError."""
        try:
            self.stop()
        except BrokerError:
            self.kill()
            raise

    def wait_for_save(self, timeout: float = 5.0) -> None:
        """Wait for the next autosave; what was acknowledged before the call is then on disk.

        With ``autosave_interval 1`` Mosquitto saves once *more* than one whole second
        has passed since the last save, so every 2 s.
        """
        if not self.persistence:
            raise BrokerError("persistence is off: mosquitto never saves")
        before = _file_version(self.persistence_path)
        deadline = time.monotonic() + timeout
        while _file_version(self.persistence_path) == before:
            if not self.is_running:
                raise BrokerError(self._with_log("mosquitto exited before saving"))
            if time.monotonic() >= deadline:
                raise BrokerError(self._with_log(f"no autosave within {timeout} s"))
            time.sleep(_POLL_SECONDS)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines Mosquitto wrote to its log and to stdout/stderr."""
        parts = (_tail(self.data_dir / name, lines) for name in (OUTPUT_NAME, LOG_NAME))
        return "\n".join(part for part in parts if part)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MosquittoBroker(host={self.host!r}, port={self.port}, pid={self.pid})"

    def _ports(self) -> list[int]:
        return [self.port] if self.tls is None else [self.port, self.tls.port]

    def _wait_until_ready(
        self, process: subprocess.Popen[bytes], log_offset: int, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while not self._is_ready(log_offset):
            if process.poll() is not None:
                message = f"mosquitto exited with code {process.returncode} at start-up"
                raise BrokerError(self._with_log(message))
            if time.monotonic() >= deadline:
                self.kill()
                message = f"mosquitto not ready on ports {self._ports()} within {timeout} s"
                raise BrokerError(self._with_log(message))
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(_POLL_SECONDS)  # a sleep that ends early if it exits

    def _is_ready(self, log_offset: int) -> bool:
        """Whether the log says "running" and every listener accepts connections.

        The ports alone are not enough: Mosquitto opens every listening socket before
        it loads the TLS files, and exits if that fails.
        """
        if _RUNNING.search(_read_from(self.log_path, log_offset)) is None:
            return False
        return all(port_in_use(self.host, port) for port in self._ports())

    def _with_log(self, message: str) -> str:
        return f"{message}; {self.data_dir} log ends:\n{self.log_tail()}"


def _config_lines(broker: MosquittoBroker) -> Iterator[str]:
    yield from _global_lines(broker)
    yield f"listener {broker.port} {broker.host}"
    if broker.tls is not None:
        yield from _tls_lines(broker.host, broker.tls)


def _global_lines(broker: MosquittoBroker) -> Iterator[str]:
    user = broker.run_as or _current_user()
    if user is not None:
        yield f"user {user}"  # as root, mosquitto would switch to user "mosquitto"
    yield f"log_dest file {_config_path(broker.log_path)}"
    yield "log_timestamp true"
    yield "log_timestamp_format %Y-%m-%dT%H:%M:%S"
    yield "set_tcp_nodelay true"
    yield "max_queued_messages 1000000"
    yield "max_queued_bytes 0"
    yield "max_inflight_messages 1000"
    yield "max_inflight_bytes 0"
    yield "persistent_client_expiration 14d"
    yield f"persistence {'true' if broker.persistence else 'false'}"
    if broker.persistence:
        yield f"persistence_location {_config_path(broker.data_dir)}"
        yield f"persistence_file {PERSISTENCE_NAME}"
        yield "autosave_interval 1"  # the default, 1800 s, loses everything on SIGKILL
        if broker.save_on_changes:
            yield "autosave_on_changes true"  # "1" then counts changes, not seconds
    if broker.password_file is None:
        yield "allow_anonymous true"
    else:
        yield "allow_anonymous false"
        yield f"password_file {_config_path(broker.password_file)}"


def _tls_lines(host: str, tls: BrokerTls) -> Iterator[str]:
    yield f"listener {tls.port} {host}"
    yield f"cafile {_config_path(tls.ca_file)}"
    yield f"certfile {_config_path(tls.cert_file)}"
    yield f"keyfile {_config_path(tls.key_file)}"
    yield f"require_certificate {'true' if tls.require_certificate else 'false'}"


def _config_path(path: Path) -> str:
    """An absolute path for mosquitto.conf, which allows spaces but not line breaks."""
    text = str(path.absolute())
    if "\n" in text or "\r" in text:
        raise ValueError(f"mosquitto.conf cannot hold a path with a line break: {text!r}")
    return text


def _hand_over(data_dir: Path, user: str) -> None:
    """Give ``data_dir`` and its files to ``user``, who writes the log and persistence."""
    entry = pwd.getpwnam(user)
    for path in [data_dir, *data_dir.iterdir()]:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _current_user() -> str | None:
    """Our user name; None when the uid has no passwd entry (then we are not root)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None


def _spawn(args: list[str], output: IO[bytes]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    except FileNotFoundError as error:
        raise BrokerError(
            f"{args[0]} not found: install Mosquitto (apt-get install mosquitto)"
        ) from error


def _file_version(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read()
    except FileNotFoundError:
        return b""


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - _TAIL_BYTES))
            data = file.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
