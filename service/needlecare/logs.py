"""structlog set-up: JSON for machines, colours for people, secrets never."""

import logging
import sys
import threading
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

REDACTED = "**********"


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


@contextmanager
def held_lines() -> Iterator[None]:
    """Hold this thread's log lines until the block ends, then write them in one go."""
    if getattr(_turn, "lines", None) is not None or _sink is None:
        yield
        return
    _turn.lines = []
    try:
        yield
    finally:
        lines, _turn.lines = _turn.lines, None
        if lines:
            _sink.write(lines)


def configure_logging(
    *, level: str = "INFO", fmt: str = "auto", secrets: Iterable[str] = ()
) -> None:
    """Route structlog (and stdlib logging, e.g. APScheduler's) to stderr."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelNamesMapping()[level]
    global _sink  # noqa: PLW0603 - one sink per process, like structlog's own configuration
    sink = _sink = TurnLogger(sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            SecretRedactor(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *args: sink,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, force=True)
