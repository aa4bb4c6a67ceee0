"""Listens for phone notification buttons (``mobile_app_notification_action`` events)."""

import contextlib
import random
import threading
from collections.abc import Callable
from typing import Any

import structlog

from needlecare.config import HomeAssistantConfig
from needlecare_integrations.backoff import backoff_delay

log = structlog.get_logger(__name__)

ACTION_EVENT = "mobile_app_notification_action"


class ActionListener:
    """Subscribes over the websocket API and hands each pressed action to ``on_action``.

    Reconnects with jittered backoff while Home Assistant is away; gives up only
    when the token is refused.
    """

    def __init__(self, config: HomeAssistantConfig, on_action: Callable[[str], None]) -> None:
        self._config = config
        self._on_action = on_action
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket: Any = None
        self.subscribed = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ha-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        socket = self._socket
        if socket is not None:
            # Closing the socket unblocks the pending receive; it may already be gone.
            with contextlib.suppress(Exception):
                socket.__exit__(None, None, None)

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
                log.warning("homeassistant_listener_lost", error=str(error), attempt=attempt)
            self.subscribed.clear()
            attempt = 0 if self._stopping.is_set() else attempt + 1
            self._stopping.wait(backoff_delay(attempt, rand=rand.random, base=1.0, cap=60.0))

    def _listen(self) -> None:
        from homeassistant_api import WebsocketClient  # noqa: PLC0415 - lazy: heavy import

        url = self._config.url.rstrip("/").replace("http", "ws", 1) + "/api/websocket"
        token = self._config.token.get_secret_value() if self._config.token else ""
        with WebsocketClient(url, token) as socket:
            self._socket = socket
            with socket.listen_events(ACTION_EVENT) as events:
                self.subscribed.set()
                log.info("homeassistant_listening", event_type=ACTION_EVENT)
                for event in events:
                    action = (getattr(event, "data", None) or {}).get("action")
                    if isinstance(action, str):
                        self._on_action(action)
