"""structlog set-up: JSON for machines, colours for people, secrets never.

The daemon's start leaves structlog (and the asyncio and rich it imports) for after
its ``online``: the loggers of the modules on its way there (:func:`get_logger`)
import it at their first line written, and the lines logged until logging is
configured, right after ``online``, are held (:func:`early_lines`).
"""

import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from functools import partial
from typing import Any, TextIO

from needlecare.clock import SystemClock

REDACTED = "**********"
# Where a held line carries the time it was logged at, until the processor below.
HELD_AT = "_held_at"


class SecretRedactor:
    """A processor that masks known secret values wherever they appear.

    Secrets are SecretStr in the config and never passed to a logger on
    purpose; this catches the accidental case, such as an exception message
    that quotes a URL with a token in it.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = [s for s in secrets if s]

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if self._secrets:
            for key, value in event.items():
                if isinstance(value, str):
                    event[key] = self._mask(value)
        return event

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


class TurnLogger:
    """Writes each line at once, except the core thread's during a turn (``held_lines``).

    A line is one ``write`` and one wake-up of whatever reads the log (journald,
    a container runtime). A turn that records an event, plans and delivers a
    prompt logs several lines before its prompt can go out; holding them and
    writing them together after the turn keeps that work off the prompt's path.
    The lines of :func:`get_logger`'s loggers are not even rendered until then.
    Lines of other threads, and of an idle core thread, are never held.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        held: list[str] | None = getattr(_turn, "lines", None)
        if held is not None:
            held.append(message)
            return
        self.write([message])

    def write(self, lines: list[str]) -> None:
        text = "".join(line + "\n" for line in lines)
        with self._lock:
            self._file.write(text)
            self._file.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


_turn = threading.local()
_sink: TurnLogger | None = None
_level = logging.INFO  # the configured level: a held line below it is not kept
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS |= {"error": logging.ERROR, "exception": logging.ERROR}


@contextmanager
def held_lines() -> Iterator[None]:
    """Hold this thread's log lines until the block ends, then write them in one go.

    Lines of :func:`get_logger`'s loggers are kept as logged (with their time) and
    rendered only then: structlog's processors cost more than the write.
    """
    if getattr(_turn, "lines", None) is not None or _sink is None:
        yield
        return
    _turn.lines, _turn.raw = [], []
    try:
        yield
    finally:
        raw, _turn.raw = _turn.raw, None
        try:
            for logger, method, event, kw in raw:
                logger.emit(method, event, kw)
        finally:
            lines, _turn.lines = _turn.lines, None
            if lines:
                _sink.write(lines)


def _stamped(method: str, kw: dict[str, Any]) -> dict[str, Any]:
    """A line's fields as logged now, to be rendered later: its time and its exception."""
    if kw.get("exc_info", method == "exception") is True:
        kw["exc_info"] = sys.exc_info()  # gone by the time the line is written
    # As structlog's TimeStamper(fmt="iso", utc=True) would have put it.
    kw[HELD_AT] = SystemClock().now().isoformat().replace("+00:00", "Z")
    return kw


class _Early:
    """The lines logged on the way to ``online``, and how to configure logging after it."""

    def __init__(self) -> None:
        # Against a line of another thread during write(); re-entrant, so that a line
        # logged while writing (by this thread) joins the list being written.
        self.lock = threading.RLock()
        self.lines: list[tuple[str, str, str, dict[str, Any]]] | None = None
        self.configure: Callable[[], None] | None = None

    def hold(self, name: str, method: str, event: str, kw: dict[str, Any]) -> bool:
        """Keep the line (False once logging is configured), with its time and exception."""
        with self.lock:
            if self.lines is None:
                return False
            self.lines.append((name, method, event, _stamped(method, kw)))
            return True

    def write(self) -> None:
        """Configure logging and write the held lines through it, in order, once."""
        with self.lock:  # a line logged meanwhile waits, then goes after these
            if self.configure is None:
                return
            try:
                self.configure()
                for name, method, event, kw in self.lines or ():
                    getattr(_structlog_logger(name), method)(event, **kw)
            finally:
                self.lines = self.configure = None


_early = _Early()
_START = "needlecare.app.run"  # the daemon's start: structlog waits until after online


def _structlog_logger(name: str) -> Any:
    import structlog  # noqa: PLC0415 - see the module's docstring

    return structlog.get_logger(name)


class Logger:
    """``structlog.get_logger(name)``; its lines held by :func:`early_lines`, and
    kept unrendered during a turn (:func:`held_lines`).

    Made while the daemon's start loads (:mod:`needlecare.app.run`), it imports
    structlog at its first line written; anywhere else at once, as before, so that
    no thread's first line (the MQTT thread's, in a test) waits for that import.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None if _START in sys.modules else _structlog_logger(name)

    def _log(self, method: str, event: str, kw: dict[str, Any]) -> None:
        if _early.lines is not None and _early.hold(self._name, method, event, kw):
            return
        raw: list[tuple[Logger, str, str, dict[str, Any]]] | None = getattr(_turn, "raw", None)
        if raw is not None:
            if _LEVELS[method] >= _level:
                raw.append((self, method, event, _stamped(method, kw)))
            return
        self.emit(method, event, kw)

    def emit(self, method: str, event: str, kw: dict[str, Any]) -> None:
        """Through structlog now: filtered, rendered and written (or held as a line)."""
        if self._logger is None:
            self._logger = _structlog_logger(self._name)
        getattr(self._logger, method)(event, **kw)

    def debug(self, event: str, **kw: Any) -> None:
        self._log("debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._log("info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._log("warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._log("error", event, kw)

    def exception(self, event: str, **kw: Any) -> None:
        self._log("exception", event, kw)


def get_logger(name: str) -> Logger:
    """A module's logger: for modules on the way to ``online``, and the core's."""
    return Logger(name)


@contextmanager
def early_lines(*, level: str, fmt: str, secrets: Iterable[str]) -> Iterator[None]:
    """Hold log lines until :func:`write_early_lines`, at the latest until the block ends.

    Then logging is configured as given and the held lines written through it, in
    order and stamped with the time each was logged at; the secrets are masked then.
    """
    with _early.lock:
        _early.lines = []
        _early.configure = partial(configure_logging, level=level, fmt=fmt, secrets=secrets)
    try:
        yield
    finally:
        _early.write()


def write_early_lines() -> None:
    """Configure logging as :func:`early_lines` was told, and write what it held (once)."""
    _early.write()


def _held_at(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A held line keeps the time it was logged at, in the timestamp's place."""
    at = event.pop(HELD_AT, None)
    if at is not None:
        event["timestamp"] = at
    return event


def configure_logging(
    *, level: str = "INFO", fmt: str = "auto", secrets: Iterable[str] = ()
) -> None:
    """Route structlog (and stdlib logging, e.g. APScheduler's) to stderr."""
    import structlog  # noqa: PLC0415 - see the module's docstring

    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelNamesMapping()[level]
    global _sink, _level  # noqa: PLW0603 - one sink per process, like structlog's configuration
    sink = _sink = TurnLogger(sys.stderr)
    _level = numeric
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _held_at,
            structlog.processors.format_exc_info,
            SecretRedactor(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *args: sink,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, force=True)
