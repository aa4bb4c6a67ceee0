"""A websocket subscription to Home Assistant on a thread of its own, kept alive.

Reconnects with jittered backoff while Home Assistant is away and gives up only when
the token is refused; subclasses say what they subscribe to in ``_listen``.
"""

import contextlib
import random
import threading
from typing import Any

from needlecare.config import HomeAssistantConfig
from needlecare.logs import get_logger
from needlecare_integrations.backoff import backoff_delay

log = get_logger(__name__)


class Subscription:
    """Runs ``_listen`` until stopped; ``subscribed`` is set while it listens."""

    thread_name = "ha-subscription"
    lost_event = "homeassistant_subscription_lost"

    def __init__(self, config: HomeAssistantConfig) -> None:
        self._config = config
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket: Any = None
        self.subscribed = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        socket = self._socket
        if socket is not None:
            # Closing the socket unblocks the pending receive; it may already be gone.
            with contextlib.suppress(Exception):
                socket.__exit__(None, None, None)

    def _token(self) -> str:
        return self._config.token.get_secret_value() if self._config.token else ""

    def _listen(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        from homeassistant_api import errors  # noqa: PLC0415 - lazy: heavy import

        rand = random.Random()  # noqa: S311 - jitter, not security
        attempt = 0
        while not self._stopping.is_set():
            try:
                self._listen()
            except errors.UnauthorizedError:
                log.error("homeassistant_auth_failed", error="the token was refused")
                return
            except Exception as error:
                if self._stopping.is_set():
                    return
                log.warning(self.lost_event, error=str(error), attempt=attempt)
            self.subscribed.clear()
            attempt += 1
            self._stopping.wait(backoff_delay(attempt, rand=rand.random, base=1.0, cap=60.0))
