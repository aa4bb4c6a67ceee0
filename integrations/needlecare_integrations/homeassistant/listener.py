"""Listens for phone notification buttons (``mobile_app_notification_action`` events)."""

from collections.abc import Callable

from needlecare.config import HomeAssistantConfig
from needlecare.logs import get_logger
from needlecare_integrations.homeassistant.subscription import Subscription
from needlecare_integrations.homeassistant.worker import websocket_url

log = get_logger(__name__)

ACTION_EVENT = "mobile_app_notification_action"


class ActionListener(Subscription):
    """Subscribes over the websocket API and hands each pressed action to ``on_action``."""

    thread_name = "ha-listener"
    lost_event = "homeassistant_listener_lost"

    def __init__(self, config: HomeAssistantConfig, on_action: Callable[[str], None]) -> None:
        super().__init__(config)
        self._on_action = on_action

    def _listen(self) -> None:
        from homeassistant_api import WebsocketClient  # noqa: PLC0415 - lazy: heavy import

        with WebsocketClient(websocket_url(self._config), self._token()) as socket:
            self._socket = socket
            with socket.listen_events(ACTION_EVENT) as events:
                self.subscribed.set()
                log.info("homeassistant_listening", event_type=ACTION_EVENT)
                for event in events:
                    action = (getattr(event, "data", None) or {}).get("action")
                    if isinstance(action, str):
                        self._on_action(action)
